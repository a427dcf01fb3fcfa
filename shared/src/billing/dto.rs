//! API shapes of billing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::StatementRecord;
use crate::error::{ApiError, FieldError};

/// Closes a cycle now (operators; the schedule closes each cycle on its own).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseCycleRequest {
    /// `2026-11` for a monthly cycle, `2026-W48` for a weekly one.
    pub cycle_id: String,
}

/// The platform paid the vendor a cycle's net payable in one currency.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRequest {
    pub currency: String,
    /// The bank transfer's reference, as it appears on the statement and in Xero.
    pub reference: String,
}

impl PayoutRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(FieldError::new("/currency", "must be an ISO 4217 code such as EUR"));
        }
        if self.reference.trim().is_empty() || self.reference.len() > 255 {
            errors.push(FieldError::new("/reference", "1 to 255 characters"));
        }
        ApiError::reject_if_any(errors)
    }
}

/// A statement with download links to its JSON and PDF.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementView {
    pub statement: StatementRecord,
    pub json_url: Option<String>,
    pub pdf_url: Option<String>,
    pub expires_in_seconds: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementList {
    /// Latest cycle first.
    pub items: Vec<StatementRecord>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
