//! Request and response bodies of the Shopify routes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{ConnectionStatus, ShopifyConnection, SyncState};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    /// The shop's permanent domain, `<name>.myshopify.com`.
    pub shop: String,
}

/// Where to send the vendor's owner: Shopify's consent page for this install.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstallStarted {
    pub shop: String,
    /// Open it in the browser; Shopify sends the owner back to `GET /shopify/callback`.
    pub authorize_url: String,
    /// The install must be approved before this (RFC 3339).
    pub expires_at: String,
}

/// The install, completed by Shopify's redirect.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstallCompleted {
    pub vendor_id: String,
    pub shop: String,
    pub status: ConnectionStatus,
    pub webhook_topics: Vec<String>,
    /// The full catalogue sync the install started (`GET /vendors/{vendorId}/jobs/{jobId}`).
    pub sync_job_id: String,
}

/// The vendor's view of its Shopify connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub status: ConnectionStatus,
    pub shop: Option<String>,
    pub scope: Option<String>,
    pub webhook_topics: Vec<String>,
    pub installed_at: Option<String>,
    pub uninstalled_at: Option<String>,
    pub sync: SyncState,
}

impl ConnectionView {
    pub fn not_connected() -> Self {
        Self {
            status: ConnectionStatus::NotConnected,
            shop: None,
            scope: None,
            webhook_topics: Vec::new(),
            installed_at: None,
            uninstalled_at: None,
            sync: SyncState::default(),
        }
    }
}

impl From<ShopifyConnection> for ConnectionView {
    fn from(c: ShopifyConnection) -> Self {
        Self {
            shop: Some(c.shop.to_string()),
            status: c.status,
            scope: Some(c.scope),
            webhook_topics: c.webhook_topics,
            installed_at: Some(c.installed_at),
            uninstalled_at: c.uninstalled_at,
            sync: c.sync,
        }
    }
}

/// What a webhook delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAccepted {
    pub webhook_id: String,
    pub topic: String,
    /// `queued`, or why nothing was queued.
    pub outcome: String,
    /// Delivered before: nothing was queued again.
    pub duplicate: bool,
}
