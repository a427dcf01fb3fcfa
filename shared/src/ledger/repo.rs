//! DynamoDB access for the ledger, tenant-scoped. An entry is written with a claim on its
//! (kind, source) in the same transaction, so a cause processed twice (a redelivered event,
//! a retried job) can never record its money twice, whatever time the second try stamps.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::model::LedgerEntry;
use crate::store::{Condition, StoreError, Table, decode, encode, keys};
use crate::tenancy::TenantScope;

const ENTRY_ENTITY: &str = "ledger_entry";
const SOURCE_ENTITY: &str = "ledger_source";

#[derive(serde::Serialize)]
struct SourceClaim<'a> {
    kind: &'a str,
    source_id: &'a str,
    occurred_at: &'a str,
}

pub struct LedgerRepo<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

impl<'a> LedgerRepo<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    /// The entry and its source claim, both "only if new", for the transaction that makes
    /// the movement (an order turning paid, a refund settling).
    pub fn transact_record(&self, entry: &LedgerEntry) -> Result<[TransactWriteItem; 2], StoreError> {
        entry.check().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let kind = entry.kind.as_str();
        let vendor = Some(self.scope.vendor_id());
        let at = entry.instant().ok_or_else(|| StoreError::Corrupt(format!("{} is not a time", entry.occurred_at)))?;
        let key = keys::ledger_entry_key(self.scope, at, kind, &entry.source_id);
        let item = encode(&key, ENTRY_ENTITY, vendor, 1, entry)?;
        let claim = SourceClaim { kind, source_id: &entry.source_id, occurred_at: &entry.occurred_at };
        let claim =
            encode(&keys::ledger_source_key(self.scope, kind, &entry.source_id), SOURCE_ENTITY, vendor, 1, &claim)?;
        Ok([
            self.table.transact_put(item, Condition::NotExists)?,
            self.table.transact_put(claim, Condition::NotExists)?,
        ])
    }

    /// The entries with `from <= occurred_at < to`, oldest first: one Query of the sort keys
    /// between the two instants (fixed-width, so they sort as the times do), all pages.
    pub async fn entries_between(
        &self,
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let prefix = keys::LEDGER_ENTRY_SK_PREFIX;
        // `#` sorts after every character of the instant, so `E#<to>#` bounds entries at `to`.
        let (low, high) =
            (format!("{prefix}{}", keys::ledger_instant(from)), format!("{prefix}{}#", keys::ledger_instant(to)));
        let items = self.table.query_range(&keys::ledger_partition(self.scope), &low, &high).await?;
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let entry: LedgerEntry = decode(item)?.value;
            if entry.instant().is_some_and(|at| at >= from && at < to) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }
}
