//! Tenancy (C1): who is calling and on whose data.
//!
//! The guard ([`guard`]) is the only code that can create a [`TenantScope`] or a
//! [`PlatformScope`]; every tenant repository takes one in its constructor and builds every
//! key from it (`crate::store::keys`). A handler therefore cannot express a read or write of
//! another vendor's data: isolation is a property of the types.

pub mod guard;
mod principal;
mod scope;

pub use principal::{Principal, Role};
pub use scope::{InvalidVendorId, PlatformScope, TenantScope, VendorId};
