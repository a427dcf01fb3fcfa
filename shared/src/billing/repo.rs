//! DynamoDB access for billing. `BillingRepo` is tenant-scoped; `PlatformStatements` reads
//! the platform's index of every vendor's statements and needs a `PlatformScope`.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::model::{PayoutTerms, StatementRecord};
use crate::store::keys::{self, sk};
use crate::store::{Condition, Cursor, QueryPage, StoreError, Table, Versioned, decode, encode};
use crate::tenancy::{PlatformScope, TenantScope};
use crate::vendors::repo::ConfigItem;

impl ConfigItem for PayoutTerms {
    const SK: &'static str = sk::PAYOUT_TERMS;
    const ENTITY: &'static str = "payout_terms";
}

const STATEMENT_ENTITY: &str = "statement";
const STATEMENT_INDEX_ENTITY: &str = "statement_index_entry";
const XERO_INVOICE_ENTITY: &str = "xero_invoice_lookup";

/// What Xero's webhook needs to find an invoice's statement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct XeroInvoiceLookup {
    pub owner_vendor: String,
    pub cycle_id: String,
    pub currency: String,
}

pub struct BillingRepo<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

impl<'a> BillingRepo<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    pub async fn statement(&self, cycle_id: &str) -> Result<Option<Versioned<StatementRecord>>, StoreError> {
        self.table.get(&keys::statement_key(self.scope, cycle_id)).await?.map(decode).transpose()
    }

    /// A page of the vendor's statements, newest first.
    pub async fn statements(
        &self,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<StatementRecord>, Option<Cursor>), StoreError> {
        let (page, next) = self
            .table
            .query_entities::<StatementRecord>(QueryPage {
                index: None,
                partition: keys::tenant_partition(self.scope),
                sort_prefix: Some(keys::STATEMENT_SK_PREFIX.to_owned()),
                limit,
                cursor,
                descending: true,
                filter: None,
            })
            .await?;
        Ok((page.into_iter().map(|v| v.value).collect(), next))
    }

    /// The vendor's last statement: the latest `period_end` among its newest 100 (cycle ids of
    /// different kinds do not sort together, so the newest by key is not enough).
    pub async fn latest_statement(&self) -> Result<Option<StatementRecord>, StoreError> {
        let (page, _) = self.statements(100, None).await?;
        let end = |s: &StatementRecord| {
            time::OffsetDateTime::parse(&s.period_end, &time::format_description::well_known::Rfc3339).ok()
        };
        Ok(page.into_iter().filter(|s| end(s).is_some()).max_by_key(end))
    }

    /// The statement record and its platform index entry, for a transaction: created once
    /// (`expected = None`: the cycle must not have one) or replacing the version read. The
    /// record is the first item, so a failed condition at index 0 means another writer won.
    pub fn statement_writes(
        &self,
        record: &StatementRecord,
        expected: Option<u64>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let version = expected.map_or(1, |v| v + 1);
        let vendor = Some(self.scope.vendor_id());
        let item =
            encode(&keys::statement_key(self.scope, &record.cycle_id), STATEMENT_ENTITY, vendor, version, record)?;
        let index_key = keys::statements_index_key(&record.period_end, self.scope.vendor_id(), &record.cycle_id);
        let index = encode(&index_key, STATEMENT_INDEX_ENTITY, None, version, record)?;
        let condition = expected.map_or(Condition::NotExists, Condition::VersionIs);
        Ok(vec![self.table.transact_put(item, condition)?, self.table.transact_put(index, Condition::Always)?])
    }

    /// Writes the statement record as [`Self::statement_writes`] describes; `ConditionFailed`
    /// when another writer got there first.
    pub async fn save_statement(&self, record: &StatementRecord, expected: Option<u64>) -> Result<(), StoreError> {
        match self.table.transact(self.statement_writes(record, expected)?).await {
            Err(StoreError::TransactionConditionFailed { .. }) => Err(StoreError::ConditionFailed),
            other => other,
        }
    }

    /// Records which statement a Xero invoice belongs to (idempotent: same content).
    pub async fn record_xero_invoice(&self, invoice_id: &str, lookup: &XeroInvoiceLookup) -> Result<(), StoreError> {
        let item = encode(&keys::xero_invoice_key(invoice_id), XERO_INVOICE_ENTITY, None, 1, lookup)?;
        self.table.put(item, Condition::Always).await
    }
}

/// The global lookup of a Xero invoice, for the webhook (which has no tenant yet).
pub async fn xero_invoice_lookup(table: &Table, invoice_id: &str) -> Result<Option<XeroInvoiceLookup>, StoreError> {
    Ok(table
        .get(&keys::xero_invoice_key(invoice_id))
        .await?
        .map(decode::<XeroInvoiceLookup>)
        .transpose()?
        .map(|v| v.value))
}

pub struct PlatformStatements<'a> {
    table: &'a Table,
    scope: &'a PlatformScope,
}

impl<'a> PlatformStatements<'a> {
    pub fn new(table: &'a Table, scope: &'a PlatformScope) -> Self {
        Self { table, scope }
    }

    /// A page of every vendor's statements, latest period first.
    pub async fn list(
        &self,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<StatementRecord>, Option<Cursor>), StoreError> {
        let (page, next) = self
            .table
            .query_entities::<StatementRecord>(QueryPage {
                index: None,
                partition: keys::statements_index_partition(self.scope),
                sort_prefix: None,
                limit,
                cursor,
                descending: true,
                filter: None,
            })
            .await?;
        Ok((page.into_iter().map(|v| v.value).collect(), next))
    }
}
