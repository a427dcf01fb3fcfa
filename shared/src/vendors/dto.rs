//! API shapes of the vendors domain. Requests refuse unknown fields, so a typo is a 422, not
//! a silently ignored setting. No response type holds a secret: credentials show as
//! `{"configured": true}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{QuoteOption, SmtpSecurity, StripeMode, Vendor, VendorStatus, VendorSummary};
use crate::integrations::secrets::Redacted;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVendorRequest {
    /// Optional slug (`[a-z0-9-]`, ≤ 64); generated when absent. Creating the same id twice
    /// is a 409, which makes a retried create safe.
    pub id: Option<String>,
    pub name: String,
    pub legal_name: Option<String>,
    pub contact_email: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// ISO 4217.
    pub currency: String,
    /// IANA time zone; `UTC` when absent.
    pub timezone: Option<String>,
}

/// Every field optional: only those sent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVendorRequest {
    pub name: Option<String>,
    pub legal_name: Option<String>,
    pub contact_email: Option<String>,
    pub country: Option<String>,
    pub currency: Option<String>,
    pub timezone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendVendorRequest {
    /// Shown to platform admins; required so a suspension is always explained.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VendorResponse {
    pub id: String,
    pub name: String,
    pub legal_name: Option<String>,
    pub contact_email: String,
    pub country: String,
    pub currency: String,
    pub timezone: String,
    pub status: VendorStatus,
    pub suspended_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Vendor> for VendorResponse {
    fn from(v: Vendor) -> Self {
        Self {
            id: v.id,
            name: v.name,
            legal_name: v.legal_name,
            contact_email: v.contact_email,
            country: v.country,
            currency: v.currency,
            timezone: v.timezone,
            status: v.status,
            suspended_reason: v.suspended_reason,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VendorList {
    pub items: Vec<VendorSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// Destination, ISO 3166-1 alpha-2.
    pub country: String,
    pub weight_grams: i64,
    pub order_value_minor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteResponse {
    pub country: String,
    /// Cheapest first; empty when the vendor does not ship there.
    pub options: Vec<QuoteOption>,
}

/// How a credential shows in the API: whether it is set, never what it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Configured {
    pub configured: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettingsRequest {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// Required the first time; omit to keep the stored password.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Redacted>,
    pub from_email: String,
    pub from_name: String,
    pub security: SmtpSecurity,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmtpSettingsResponse {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Configured,
    pub from_email: String,
    pub from_name: String,
    pub security: SmtpSecurity,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StripeSettingsRequest {
    /// `pk_test_…` or `pk_live_…`.
    pub publishable_key: String,
    /// `sk_…` or `rk_…` of the same mode. Required the first time; omit to keep it.
    #[schema(value_type = Option<String>, format = Password)]
    pub secret_key: Option<Redacted>,
    /// `whsec_…`. Required the first time; omit to keep it.
    #[schema(value_type = Option<String>, format = Password)]
    pub webhook_secret: Option<Redacted>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StripeSettingsResponse {
    pub publishable_key: String,
    pub mode: StripeMode,
    pub secret_key: Configured,
    pub webhook_secret: Configured,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageSettingsRequest {
    pub bucket: String,
    /// Key prefix for the vendor's objects; `vendors/<id>/` when absent.
    pub prefix: Option<String>,
}
