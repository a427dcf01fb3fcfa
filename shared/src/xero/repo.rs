//! DynamoDB access for the platform's Xero connection (a platform item: no tenant).

use super::model::{ConnectState, XeroConnectionRecord};
use crate::store::{Condition, StoreError, Table, Versioned, decode, encode, keys};

const CONNECTION_ENTITY: &str = "xero_connection";
const STATE_ENTITY: &str = "xero_connect_state";

pub struct XeroRepo<'a> {
    table: &'a Table,
}

impl<'a> XeroRepo<'a> {
    pub fn new(table: &'a Table) -> Self {
        Self { table }
    }

    /// A strongly consistent read: the lease protocol depends on it.
    pub async fn connection(&self) -> Result<Option<Versioned<XeroConnectionRecord>>, StoreError> {
        self.table.get(&keys::xero_connection_key()).await?.map(decode).transpose()
    }

    /// Writes the connection over the version read (`None`: there is none yet). Versions only
    /// grow, so a worker holding an old lease can never overwrite a newer connection.
    /// `ConditionFailed` when another worker wrote it since.
    pub async fn save_connection(
        &self,
        record: &XeroConnectionRecord,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let (version, condition) = match expected {
            Some(v) => (v + 1, Condition::VersionIs(v)),
            None => (1, Condition::NotExists),
        };
        let item = encode(&keys::xero_connection_key(), CONNECTION_ENTITY, None, version, record)?;
        self.table.put(item, condition).await?;
        Ok(version)
    }

    pub async fn put_state(&self, nonce: &str, state: &ConnectState) -> Result<(), StoreError> {
        let item = encode(&keys::xero_connect_state_key(nonce), STATE_ENTITY, None, 1, state)?;
        self.table.put_expiring(item, state.expires_at).await
    }

    pub async fn take_state(&self, nonce: &str, now_epoch_s: i64) -> Result<Option<ConnectState>, StoreError> {
        self.table.take_unexpired(&keys::xero_connect_state_key(nonce), now_epoch_s).await
    }
}
