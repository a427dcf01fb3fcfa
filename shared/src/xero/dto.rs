//! API shapes of the Xero connection.

use serde::Serialize;
use utoipa::ToSchema;

use super::model::ConnectionStatus;

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectStarted {
    /// Send the platform's Xero admin here; Xero redirects to `GET /xero/callback`.
    pub authorize_url: String,
    pub expires_in_seconds: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// `not_connected` until an admin connects an organisation.
    pub status: String,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub access_expires_at: Option<String>,
    pub connected_at: Option<String>,
    pub refreshed_at: Option<String>,
    pub refreshes: u64,
    pub last_error: Option<String>,
}

impl ConnectionView {
    pub fn not_connected() -> Self {
        Self {
            status: "not_connected".into(),
            tenant_id: None,
            tenant_name: None,
            access_expires_at: None,
            connected_at: None,
            refreshed_at: None,
            refreshes: 0,
            last_error: None,
        }
    }

    pub fn status_text(status: ConnectionStatus) -> String {
        match status {
            ConnectionStatus::Connected => "connected".into(),
            ConnectionStatus::NeedsReconnect => "needs_reconnect".into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// Invoice events queued for a status read.
    pub queued: usize,
    /// Events that name no invoice of Bestow's (other categories, other invoices).
    pub ignored: usize,
}
