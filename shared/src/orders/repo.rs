//! DynamoDB access for orders, their recipients and their units, tenant-scoped. An order's
//! partition holds the order, its recipients (50 per item) and its units; the vendor's order
//! list and the fulfillment queue are GSI1 partitions.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::model::{Order, RECIPIENTS_PER_CHUNK, Recipient, Refund};
use crate::fulfillment::model::{CodeClaim, FulfillmentUnit};
use crate::store::{Condition, Cursor, Item, QueryPage, StoreError, Table, Versioned, attr, decode, encode, keys};
use crate::tenancy::TenantScope;

const ORDER_ENTITY: &str = "order";
const RECIPIENTS_ENTITY: &str = "order_recipients";
const UNIT_ENTITY: &str = "fulfillment_unit";
const CODE_ENTITY: &str = "redemption_code";
const PAYMENT_INTENT_ENTITY: &str = "payment_intent_link";
const STRIPE_EVENT_ENTITY: &str = "stripe_event";
const REFUND_ENTITY: &str = "refund";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientChunk {
    pub order_id: String,
    pub chunk: usize,
    pub recipients: Vec<Recipient>,
    /// Each recipient's shipping as charged (minor units), in the same order.
    pub shipping_minor: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntentLink {
    pub payment_intent_id: String,
    pub order_id: String,
}

/// A Stripe event as handled: kept so a redelivery is recognised, and as the record of
/// events that did not fit the order's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeEventRecord {
    pub event_id: String,
    pub event_type: String,
    pub order_id: Option<String>,
    /// `applied`, or why it was not.
    pub outcome: String,
    pub received_at: String,
}

/// The gift resolver's read: the global claim of a redemption code. Global by nature (the
/// vendor is what it finds out), so it takes no scope; only the resolver calls it.
pub async fn code_claim(table: &Table, code: &str) -> Result<Option<CodeClaim>, StoreError> {
    Ok(table.get(&keys::redemption_code_key(code)).await?.map(decode).transpose()?.map(|v| v.value))
}

pub struct OrderRepo<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

impl<'a> OrderRepo<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    pub fn table(&self) -> &'a Table {
        self.table
    }

    fn order_item(&self, order: &Order, version: u64) -> Result<Item, StoreError> {
        let mut item = encode(
            &keys::order_key(self.scope, &order.id),
            ORDER_ENTITY,
            Some(self.scope.vendor_id()),
            version,
            order,
        )?;
        item.insert(attr::GSI1_PK.to_owned(), AttributeValue::S(keys::order_list_partition(self.scope)));
        item.insert(attr::GSI1_SK.to_owned(), AttributeValue::S(order.id.clone()));
        Ok(item)
    }

    pub fn unit_item(&self, unit: &FulfillmentUnit, version: u64) -> Result<Item, StoreError> {
        let key = keys::unit_key(self.scope, &unit.order_id, unit.number);
        let mut item = encode(&key, UNIT_ENTITY, Some(self.scope.vendor_id()), version, unit)?;
        item.insert(
            attr::GSI1_PK.to_owned(),
            AttributeValue::S(keys::unit_queue_partition(self.scope, unit.status.as_str())),
        );
        item.insert(attr::GSI1_SK.to_owned(), AttributeValue::S(unit.id.clone()));
        Ok(item)
    }

    // ------------------------------------------------------------ reads

    pub async fn order(&self, order_id: &str) -> Result<Option<Versioned<Order>>, StoreError> {
        self.table.get(&keys::order_key(self.scope, order_id)).await?.map(decode).transpose()
    }

    pub async fn orders(
        &self,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<Versioned<Order>>, Option<Cursor>), StoreError> {
        self.table
            .query_entities(QueryPage {
                index: Some(attr::GSI1),
                partition: keys::order_list_partition(self.scope),
                sort_prefix: None,
                limit,
                cursor,
                descending: true,
                filter: None,
            })
            .await
    }

    /// The order named by a PaymentIntent (events name the intent, not the order).
    pub async fn order_of_payment_intent(&self, payment_intent_id: &str) -> Result<Option<String>, StoreError> {
        let item = self.table.get(&keys::payment_intent_key(self.scope, payment_intent_id)).await?;
        Ok(item.map(decode::<PaymentIntentLink>).transpose()?.map(|link| link.value.order_id))
    }

    /// Every recipient of an order, in the buyer's order, with the shipping each was charged.
    pub async fn recipients(&self, order_id: &str) -> Result<(Vec<Recipient>, Vec<i64>), StoreError> {
        let items = self
            .table
            .query_all(&keys::order_partition(self.scope, order_id), Some(keys::RECIPIENTS_SK_PREFIX))
            .await?;
        let mut chunks: Vec<RecipientChunk> =
            items.into_iter().map(|i| decode::<RecipientChunk>(i).map(|c| c.value)).collect::<Result<_, _>>()?;
        chunks.sort_by_key(|c| c.chunk);
        let shipping = chunks.iter().flat_map(|c| c.shipping_minor.iter().copied()).collect();
        Ok((chunks.into_iter().flat_map(|c| c.recipients).collect(), shipping))
    }

    pub async fn unit(&self, order_id: &str, number: u32) -> Result<Option<Versioned<FulfillmentUnit>>, StoreError> {
        self.table.get(&keys::unit_key(self.scope, order_id, number)).await?.map(decode).transpose()
    }

    /// One page of an order's units, in recipient order.
    pub async fn units(
        &self,
        order_id: &str,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<Versioned<FulfillmentUnit>>, Option<Cursor>), StoreError> {
        self.table
            .query_entities(QueryPage {
                index: None,
                partition: keys::order_partition(self.scope, order_id),
                sort_prefix: Some(keys::UNIT_SK_PREFIX.to_owned()),
                limit,
                cursor,
                descending: false,
                filter: None,
            })
            .await
    }

    /// One page of the vendor's units in a fulfillment status (GSI1), optionally of one order
    /// only (unit ids begin with their order's id).
    pub async fn queue(
        &self,
        status: &str,
        order_id: Option<&str>,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<Versioned<FulfillmentUnit>>, Option<Cursor>), StoreError> {
        self.table
            .query_entities(QueryPage {
                index: Some(attr::GSI1),
                partition: keys::unit_queue_partition(self.scope, status),
                sort_prefix: order_id.map(|o| format!("{o}-")),
                limit,
                cursor,
                descending: false,
                filter: None,
            })
            .await
    }

    // ------------------------------------------------------------ writes

    /// The recipients, before the order that names them: written idempotently (fixed keys
    /// under the new order's id), invisible until the order exists.
    pub async fn put_recipients(
        &self,
        order_id: &str,
        recipients: &[Recipient],
        shipping_minor: &[i64],
    ) -> Result<u32, StoreError> {
        let items = recipients
            .chunks(RECIPIENTS_PER_CHUNK)
            .zip(shipping_minor.chunks(RECIPIENTS_PER_CHUNK))
            .enumerate()
            .map(|(chunk, (recipients, shipping))| {
                let value = RecipientChunk {
                    order_id: order_id.to_owned(),
                    chunk,
                    recipients: recipients.to_vec(),
                    shipping_minor: shipping.to_vec(),
                };
                encode(
                    &keys::recipients_key(self.scope, order_id, chunk),
                    RECIPIENTS_ENTITY,
                    Some(self.scope.vendor_id()),
                    1,
                    &value,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.table.batch_put(items).await
    }

    /// A new order and the link from its PaymentIntent, both only if new.
    pub fn create_order(&self, order: &Order) -> Result<Vec<TransactWriteItem>, StoreError> {
        let link = PaymentIntentLink { payment_intent_id: order.payment_intent_id.clone(), order_id: order.id.clone() };
        let link_item = encode(
            &keys::payment_intent_key(self.scope, &order.payment_intent_id),
            PAYMENT_INTENT_ENTITY,
            Some(self.scope.vendor_id()),
            1,
            &link,
        )?;
        Ok(vec![
            self.table.transact_put(self.order_item(order, 1)?, Condition::NotExists)?,
            self.table.transact_put(link_item, Condition::NotExists)?,
        ])
    }

    /// The order replaced, if it is still the version read.
    pub fn save_order(&self, order: &Order, read_version: u64) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_put(self.order_item(order, read_version + 1)?, Condition::VersionIs(read_version))
    }

    /// The unit replaced, if it is still the version read.
    pub fn save_unit(&self, unit: &FulfillmentUnit, read_version: u64) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_put(self.unit_item(unit, read_version + 1)?, Condition::VersionIs(read_version))
    }

    pub async fn refund(&self, order_id: &str, refund_id: &str) -> Result<Option<Versioned<Refund>>, StoreError> {
        self.table.get(&keys::refund_key(self.scope, order_id, refund_id)).await?.map(decode).transpose()
    }

    /// The refund, new (`read_version` `None`) or replacing the version read.
    pub fn save_refund(&self, refund: &Refund, read_version: Option<u64>) -> Result<TransactWriteItem, StoreError> {
        let key = keys::refund_key(self.scope, &refund.order_id, &refund.id);
        let item =
            encode(&key, REFUND_ENTITY, Some(self.scope.vendor_id()), read_version.map_or(1, |v| v + 1), refund)?;
        self.table.transact_put(item, read_version.map_or(Condition::NotExists, Condition::VersionIs))
    }

    /// A Stripe event's record, only if it was never recorded (the deduplication).
    pub fn record_event(&self, record: &StripeEventRecord) -> Result<TransactWriteItem, StoreError> {
        let item = encode(
            &keys::stripe_event_key(self.scope, &record.event_id),
            STRIPE_EVENT_ENTITY,
            Some(self.scope.vendor_id()),
            1,
            record,
        )?;
        self.table.transact_put(item, Condition::NotExists)
    }

    /// A new unit and its code's global claim, each only if new: a repeated split finds the
    /// unit taken, a colliding code finds the claim taken.
    pub fn create_unit(&self, unit: &FulfillmentUnit) -> Result<[TransactWriteItem; 2], StoreError> {
        let claim = CodeClaim {
            owner_vendor: self.scope.vendor_id().to_string(),
            order_id: unit.order_id.clone(),
            unit_number: unit.number,
        };
        // A global item: no vendor attribute, reached only through the gift resolver.
        let claim_item = encode(&keys::redemption_code_key(&unit.code), CODE_ENTITY, None, 1, &claim)?;
        Ok([
            self.table.transact_put(self.unit_item(unit, 1)?, Condition::NotExists)?,
            self.table.transact_put(claim_item, Condition::NotExists)?,
        ])
    }
}
