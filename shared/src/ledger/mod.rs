//! The vendor's ledger (issue 7's foundation): every money movement of a vendor as an
//! immutable, tenant-scoped entry in integer minor units, written once per cause, so that a
//! statement of any period is one Query and its totals always add up.

pub mod model;
pub mod repo;
