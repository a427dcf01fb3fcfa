//! The audit log's items: `V#<vendor>#AUDIT` / `<entry id>`.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::model::AuditEntry;
use crate::store::{Condition, Cursor, Item, QueryPage, StoreError, Table, encode, keys};
use crate::tenancy::TenantScope;

const ENTITY: &str = "audit_entry";

pub struct AuditLog<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

impl<'a> AuditLog<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    fn item(&self, entry: &AuditEntry) -> Result<Item, StoreError> {
        encode(&keys::audit_key(self.scope, &entry.id), ENTITY, Some(self.scope.vendor_id()), 1, entry)
    }

    /// The entry as one item of the transaction that makes the change it records.
    pub fn transact_put(&self, entry: &AuditEntry) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_put(self.item(entry)?, Condition::NotExists)
    }

    /// The entry on its own, for changes of many items that no single transaction holds
    /// (a variant generation): written once the change is complete.
    pub async fn record(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.table.put(self.item(entry)?, Condition::NotExists).await
    }

    /// One page, newest first.
    pub async fn list(
        &self,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<AuditEntry>, Option<Cursor>), StoreError> {
        let (entities, next) = self
            .table
            .query_entities::<AuditEntry>(QueryPage {
                index: None,
                partition: keys::audit_partition(self.scope),
                sort_prefix: None,
                limit,
                cursor,
                descending: true,
                filter: None,
            })
            .await?;
        Ok((entities.into_iter().map(|v| v.value).collect(), next))
    }
}
