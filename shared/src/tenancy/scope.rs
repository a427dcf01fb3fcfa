//! The handles a request is given to reach data. Their constructors are private to
//! `tenancy`: only the guard (and, later, the job runtime in this module) creates them.

use std::fmt;

use super::principal::{Principal, Role};

/// A vendor (tenant) id: 1–64 characters of `[a-z0-9-]`, so it can never smuggle a key
/// separator (`#`) into a partition key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VendorId(String);

#[derive(Debug, thiserror::Error)]
#[error("a vendor id is 1-64 characters of a-z, 0-9 and '-'")]
pub struct InvalidVendorId;

impl VendorId {
    pub fn parse(raw: &str) -> Result<Self, InvalidVendorId> {
        let valid = (1..=64).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid { Ok(Self(raw.to_owned())) } else { Err(InvalidVendorId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VendorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who acts, for the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub role: Role,
}

/// Access to exactly one vendor's data. Tenant repositories take one; keys are built from it.
#[derive(Clone, Debug)]
pub struct TenantScope {
    vendor_id: VendorId,
    actor: Actor,
}

impl TenantScope {
    pub(super) fn new(vendor_id: VendorId, principal: &Principal) -> Self {
        Self { vendor_id, actor: Actor { user_id: principal.user_id.clone(), role: principal.role } }
    }

    pub fn vendor_id(&self) -> &VendorId {
        &self.vendor_id
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

/// Access to the platform's own items (the vendor directory). Only platform admins get one.
#[derive(Clone, Debug)]
pub struct PlatformScope {
    actor: Actor,
}

impl PlatformScope {
    pub(super) fn new(principal: &Principal) -> Self {
        Self { actor: Actor { user_id: principal.user_id.clone(), role: principal.role } }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// A platform admin acting on one vendor (create, suspend): the only way from the
    /// platform scope into a tenant's partition, and it needs the admin's scope in hand.
    pub fn tenant(&self, vendor_id: VendorId) -> TenantScope {
        TenantScope { vendor_id, actor: self.actor.clone() }
    }
}
