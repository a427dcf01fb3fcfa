//! DynamoDB access for plans: the vendor's plan state, its monthly usage, the global customer
//! lookup the webhook resolves vendors by, and the webhook's receipts.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::model::PlanState;
use crate::store::keys::{self, sk};
use crate::store::{Condition, StoreError, Table, decode, encode};
use crate::tenancy::TenantScope;
use crate::vendors::repo::ConfigItem;

impl ConfigItem for PlanState {
    const SK: &'static str = sk::PLAN;
    const ENTITY: &'static str = "plan_state";
}

/// The counter attribute of a month's usage item.
const RECIPIENTS: &str = "recipients";

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CustomerLookup {
    pub owner_vendor: String,
}

#[derive(serde::Serialize)]
struct Receipt<'a> {
    event_type: &'a str,
    outcome: &'a str,
}

pub struct PlanRepo<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

impl<'a> PlanRepo<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    /// Recipients of the month's paid orders so far.
    pub async fn recipients_in(&self, month: &str) -> Result<u64, StoreError> {
        let item = self.table.get(&keys::usage_key(self.scope, month)).await?;
        Ok(item
            .and_then(|i| i.get(RECIPIENTS).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u64>().ok()))
            .unwrap_or(0))
    }

    /// Counts an order's recipients in its month, in the transaction that makes it paid.
    pub fn transact_count_recipients(&self, month: &str, recipients: u32) -> Result<TransactWriteItem, StoreError> {
        let key = keys::usage_key(self.scope, month);
        self.table.transact_increment(&key, "usage", self.scope.vendor_id(), RECIPIENTS, i64::from(recipients))
    }

    pub async fn storefronts(&self) -> Result<u64, StoreError> {
        self.table.count(None, &keys::tenant_partition(self.scope), Some(keys::STOREFRONT_SK_PREFIX)).await
    }

    pub async fn products(&self) -> Result<u64, StoreError> {
        self.table.count(Some("GSI1"), &keys::product_list_partition(self.scope), None).await
    }

    /// Records which vendor a customer of the platform's account is (idempotent).
    pub async fn record_customer(&self, customer_id: &str) -> Result<(), StoreError> {
        let lookup = CustomerLookup { owner_vendor: self.scope.vendor_id().to_string() };
        let item = encode(&keys::billing_customer_key(customer_id), "billing_customer", None, 1, &lookup)?;
        self.table.put(item, Condition::Always).await
    }
}

pub async fn customer_vendor(table: &Table, customer_id: &str) -> Result<Option<String>, StoreError> {
    Ok(table
        .get(&keys::billing_customer_key(customer_id))
        .await?
        .map(decode::<CustomerLookup>)
        .transpose()?
        .map(|l| l.value.owner_vendor))
}

/// Whether a Stripe Billing event was handled already.
pub async fn event_seen(table: &Table, event_id: &str) -> Result<bool, StoreError> {
    Ok(table.get(&keys::billing_event_key(event_id)).await?.is_some())
}

/// Notes that an event was handled (after its effect, which is itself idempotent).
pub async fn record_event(table: &Table, event_id: &str, event_type: &str, outcome: &str) -> Result<(), StoreError> {
    let mut item =
        encode(&keys::billing_event_key(event_id), "billing_event", None, 1, &Receipt { event_type, outcome })?;
    // Stripe retries for three days: the receipt outlives that, then DynamoDB's TTL drops it.
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 86_400;
    item.insert(crate::store::attr::EXPIRES_AT_EPOCH_S.to_owned(), AttributeValue::N(expires.to_string()));
    table.put(item, Condition::Always).await
}
