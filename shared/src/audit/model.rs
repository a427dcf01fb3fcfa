//! An audit entry: immutable once written.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::tenancy::TenantScope;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Time-ordered id: entries list newest first by id.
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// The user (JWT `sub`) or, for a job, the user who started it.
    pub actor: String,
    pub actor_role: String,
    /// `<resource>.<verb>`, e.g. `product.created`, `variant.updated`, `variants.generated`.
    pub action: String,
    /// The resource's path under the vendor, e.g. `products/01j…/variants/01j…`.
    pub resource: String,
    /// The version before the change (`None` for a creation).
    pub before_version: Option<u64>,
    /// The version after the change (`None` for a deletion or a change of many items).
    pub after_version: Option<u64>,
    /// A short human summary (`"12 variants created, 3 archived"`).
    pub summary: Option<String>,
}

impl AuditEntry {
    /// An entry for a change made now by the scope's actor.
    pub fn new(scope: &TenantScope, action: &str, resource: String) -> Self {
        Self::by(&scope.actor().user_id, scope.actor().role.as_str(), action, resource)
    }

    /// An entry for a change made now on behalf of `actor` (a job acting for its requester).
    pub fn by(actor: &str, actor_role: &str, action: &str, resource: String) -> Self {
        Self {
            id: crate::store::ids::new_id(),
            at: crate::vendors::service::now_rfc3339(),
            actor: actor.to_owned(),
            actor_role: actor_role.to_owned(),
            action: action.to_owned(),
            resource,
            before_version: None,
            after_version: None,
            summary: None,
        }
    }

    pub fn versions(mut self, before: Option<u64>, after: Option<u64>) -> Self {
        self.before_version = before;
        self.after_version = after;
        self
    }

    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }
}
