//! API shapes of the audit log.

use serde::Serialize;
use utoipa::ToSchema;

use super::model::AuditEntry;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}
