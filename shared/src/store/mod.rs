//! The single DynamoDB table: keys, conditional writes, optimistic concurrency, cursors.
//!
//! Table layout (declared in `template.yaml`, provisioned locally from it):
//! `PK`/`SK` strings, `GSI1` on `GSI1PK`/`GSI1SK`, TTL on `expires_at_epoch_s` (seconds).
//! Every tenant item also carries `vendor_id` and a `version` for `If-Match`.

pub mod counter;
pub mod cursor;
pub mod ids;
pub mod keys;
mod table;

pub use cursor::Cursor;
pub use keys::Key;
pub use table::{Condition, Expression, Item, Page, PutOutcome, QueryPage, Table, Versioned, decode, encode};

use crate::error::ApiError;

/// Attribute names shared by every item; entity attributes never reuse them.
pub mod attr {
    pub const PK: &str = "PK";
    pub const SK: &str = "SK";
    pub const GSI1_PK: &str = "GSI1PK";
    pub const GSI1_SK: &str = "GSI1SK";
    pub const VERSION: &str = "version";
    pub const VENDOR_ID: &str = "vendor_id";
    pub const ENTITY: &str = "entity";
    /// DynamoDB TTL: epoch seconds, as the TTL feature requires.
    pub const EXPIRES_AT_EPOCH_S: &str = "expires_at_epoch_s";
    pub const GSI1: &str = "GSI1";
    /// Every attribute the store adds around an entity's own fields.
    pub const RESERVED: &[&str] = &[PK, SK, GSI1_PK, GSI1_SK, VERSION, VENDOR_ID, ENTITY, EXPIRES_AT_EPOCH_S];
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write's condition did not hold (exists / version / uniqueness).
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled; `failed` lists the indexes whose condition failed.
    #[error("transaction cancelled at items {failed:?}")]
    TransactionConditionFailed { failed: Vec<usize> },
    /// Other transactions kept holding the items (retried already): worth a later retry.
    #[error("the items are busy with other writes")]
    Contention,
    #[error("pagination cursor is invalid: {0}")]
    BadCursor(&'static str),
    #[error("stored item is unreadable: {0}")]
    Corrupt(String),
    #[error("dynamodb: {0}")]
    Sdk(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::BadCursor(why) => ApiError::BadRequest(format!("invalid cursor: {why}")),
            StoreError::ConditionFailed | StoreError::TransactionConditionFailed { .. } => {
                ApiError::Conflict("the resource was changed by another request".to_owned())
            }
            StoreError::Contention => {
                ApiError::Conflict("the resource is being changed by other requests; try again".to_owned())
            }
            other => ApiError::internal(other),
        }
    }
}
