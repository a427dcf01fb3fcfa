//! Every key of the table is built here, and nowhere else.
//!
//! Tenant partitions are `V#<vendor>` or `V#<vendor>#<sub-partition>`, so an IAM policy with
//! `dynamodb:LeadingKeys` matching `V#<vendor>` and `V#<vendor>#*` could enforce the same
//! boundary as the types do. Global lookups (few, reached only by resolvers) live under `G#`;
//! the platform's own directory under `P#`.

use crate::tenancy::{PlatformScope, TenantScope, VendorId};

pub const TENANT_PREFIX: &str = "V#";
pub const GLOBAL_PREFIX: &str = "G#";
pub const PLATFORM_PREFIX: &str = "P#";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

fn vendor_partition(vendor: &VendorId) -> String {
    format!("{TENANT_PREFIX}{vendor}")
}

/// The partition holding a vendor's configuration (and, later, its small entities).
pub fn tenant_partition(scope: &TenantScope) -> String {
    vendor_partition(scope.vendor_id())
}

/// A key in the vendor's main partition.
pub fn tenant_key(scope: &TenantScope, sk: impl Into<String>) -> Key {
    Key { pk: tenant_partition(scope), sk: sk.into() }
}

/// An idempotency record (of a job or of an HTTP request): one partition per record under
/// the vendor's prefix, so a burst of jobs never heats a single key.
pub fn idempotency_key(scope: &TenantScope, kind: &str, key: &str) -> Key {
    Key {
        pk: format!("{}#IDEMPOTENCY#{}#{}", tenant_partition(scope), escape(kind), escape(key)),
        sk: "IDEMPOTENCY".to_owned(),
    }
}

/// An idempotency record of a platform-admin request (creating a vendor).
pub fn platform_idempotency_key(_scope: &PlatformScope, kind: &str, key: &str) -> Key {
    Key { pk: format!("{PLATFORM_PREFIX}IDEMPOTENCY#{}#{}", escape(kind), escape(key)), sk: "IDEMPOTENCY".to_owned() }
}

/// Caller-chosen parts of a key may contain the separator: escaped, two different
/// (kind, key) pairs can never make the same key.
fn escape(part: &str) -> String {
    part.replace('%', "%25").replace('#', "%23")
}

/// True when `pk` (or a GSI partition key) belongs to `vendor`: the whole-table audit in the
/// tests uses this to prove no tenant item escaped its prefix.
pub fn belongs_to_vendor(pk: &str, vendor: &str) -> bool {
    pk.strip_prefix(TENANT_PREFIX)
        .and_then(|rest| rest.strip_prefix(vendor))
        .is_some_and(|tail| tail.is_empty() || tail.starts_with('#'))
}

const VENDOR_DIRECTORY: &str = "P#VENDORS";
pub const VENDOR_DIRECTORY_SK_PREFIX: &str = "VENDOR#";

/// The platform's vendor directory, listed only by platform admins.
pub fn vendor_directory_partition(_scope: &PlatformScope) -> String {
    VENDOR_DIRECTORY.to_owned()
}

/// A vendor's own entry in the directory (kept in step with its profile in one
/// transaction). Built from the vendor's scope, so it can only ever name that vendor.
pub fn vendor_directory_entry(scope: &TenantScope) -> Key {
    Key { pk: VENDOR_DIRECTORY.to_owned(), sk: format!("{VENDOR_DIRECTORY_SK_PREFIX}{}", scope.vendor_id()) }
}

/// Sort keys of the vendor's configuration items.
pub mod sk {
    pub const PROFILE: &str = "PROFILE";
    pub const SHIPPING: &str = "CONFIG#SHIPPING";
    pub const SMTP: &str = "CONFIG#SMTP";
    pub const STRIPE: &str = "CONFIG#STRIPE";
    pub const STORAGE: &str = "CONFIG#STORAGE";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_prefix_does_not_match_a_longer_vendor_id() {
        assert!(belongs_to_vendor("V#acme", "acme"));
        assert!(belongs_to_vendor("V#acme#ORDER#1", "acme"));
        assert!(!belongs_to_vendor("V#acme-2", "acme"));
        assert!(!belongs_to_vendor("G#acme", "acme"));
        assert!(VENDOR_DIRECTORY.starts_with(PLATFORM_PREFIX));
        assert_ne!(escape("a#b") + "#" + &escape("c"), escape("a") + "#" + &escape("b#c"));
    }
}
