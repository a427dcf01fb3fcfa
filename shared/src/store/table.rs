//! The table handle and its few primitive operations. Repositories compose these; nothing
//! else in the crate calls the DynamoDB client directly.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, PutRequest, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::Key;
use super::{Cursor, StoreError, attr};
use crate::tenancy::VendorId;

pub type Item = HashMap<String, AttributeValue>;

/// What must hold for a write to happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Unconditional (a companion item in a transaction whose main item is conditioned).
    Always,
    /// Create only: the key must be free.
    NotExists,
    /// Replace only the version the caller read (optimistic concurrency).
    VersionIs(u64),
}

/// Which sort keys of a partition a whole-partition read takes.
#[derive(Clone, Copy)]
enum SortKeys<'a> {
    Prefix(&'a str),
    Between(&'a str, &'a str),
}

#[derive(Clone)]
pub struct Table {
    client: Client,
    name: Arc<str>,
}

/// A condition expression with its `#name` and `:value` placeholders.
pub struct Expression {
    pub text: &'static str,
    pub names: Vec<(&'static str, &'static str)>,
    pub values: Vec<(&'static str, AttributeValue)>,
}

impl Expression {
    fn names(&self) -> HashMap<String, String> {
        self.names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
    }
}

pub enum PutOutcome {
    Written,
    /// The condition failed; the item as it was, if there was one.
    Refused(Option<Item>),
}

/// One page of a Query.
pub struct QueryPage<'a> {
    /// `None` for the base table, `Some("GSI1")` for the index.
    pub index: Option<&'static str>,
    pub partition: String,
    pub sort_prefix: Option<String>,
    pub limit: i32,
    pub cursor: Option<&'a Cursor>,
    /// Newest first: the sort key descending.
    pub descending: bool,
    /// Applied after the key condition and `limit` (so a page may hold fewer items, and the
    /// cursor still moves on): for conditions that depend on the time of the read.
    pub filter: Option<Expression>,
}

/// Tries again of a transaction cancelled by a conflicting one.
const TRANSACTION_CONFLICT_RETRIES: u32 = 4;
/// BatchGetItem takes at most 100 keys.
pub const BATCH_GET_LIMIT: usize = 100;
/// BatchWriteItem takes at most 25 requests.
pub const BATCH_WRITE_LIMIT: usize = 25;
/// Batch calls in flight at once for one caller: enough to hide latency, few enough not to
/// provoke throttling on a fresh on-demand table.
const BATCH_CONCURRENCY: usize = 4;
/// Unprocessed items are retried with backoff this many times before the write fails.
const BATCH_RETRIES: u32 = 8;

pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

fn sdk_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Sdk(DisplayErrorContext(err).to_string())
}

/// Maps a conditional write's result: a failed condition is `ConditionFailed`, anything
/// else the SDK reports is `Sdk`.
fn conditional<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<(), StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException") => {
            Err(StoreError::ConditionFailed)
        }
        Err(err) => Err(sdk_error(err)),
    }
}

impl Table {
    pub fn new(client: Client, name: impl Into<Arc<str>>) -> Self {
        Self { client, name: name.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw client, for provisioning and for whole-table audits in tests; request paths
    /// go through the typed operations below.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A strongly consistent read of one item.
    pub async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.name)
            .key(attr::PK, AttributeValue::S(key.pk.clone()))
            .key(attr::SK, AttributeValue::S(key.sk.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }

    /// A conditional put of one item.
    pub async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let (expression, names, values) = condition_parts(condition);
        let result = self
            .client
            .put_item()
            .table_name(&*self.name)
            .set_item(Some(item))
            .set_condition_expression(expression.map(str::to_owned))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await;
        conditional(result)
    }

    /// A put under a custom condition. When the condition fails, the item as it was
    /// (`ReturnValuesOnConditionCheckFailure: ALL_OLD`) comes back in `Refused`, so the caller
    /// can decide without a second read.
    pub async fn put_unless(&self, item: Item, condition: &Expression) -> Result<PutOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&*self.name)
            .set_item(Some(item))
            .condition_expression(condition.text)
            .set_expression_attribute_names(Some(condition.names()))
            .set_expression_attribute_values(condition.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Written),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(e) => Ok(PutOutcome::Refused(e.item)),
                other => Err(StoreError::Sdk(DisplayErrorContext(other).to_string())),
            },
        }
    }

    /// `SET`s attributes of an existing item under a condition.
    pub async fn update(
        &self,
        key: &Key,
        set: &[(&str, AttributeValue)],
        remove: &[&str],
        condition: &Expression,
    ) -> Result<(), StoreError> {
        let mut names = condition.names();
        let mut values = condition.values().unwrap_or_default();
        let mut assignments = Vec::new();
        for (i, (name, value)) in set.iter().enumerate() {
            names.insert(format!("#set{i}"), (*name).to_owned());
            values.insert(format!(":set{i}"), value.clone());
            assignments.push(format!("#set{i} = :set{i}"));
        }
        let mut expression = format!("SET {}", assignments.join(", "));
        if !remove.is_empty() {
            for (i, name) in remove.iter().enumerate() {
                names.insert(format!("#rm{i}"), (*name).to_owned());
            }
            expression.push_str(&format!(
                " REMOVE {}",
                (0..remove.len()).map(|i| format!("#rm{i}")).collect::<Vec<_>>().join(", ")
            ));
        }
        let result = self
            .client
            .update_item()
            .table_name(&*self.name)
            .key(attr::PK, AttributeValue::S(key.pk.clone()))
            .key(attr::SK, AttributeValue::S(key.sk.clone()))
            .update_expression(expression)
            .condition_expression(condition.text)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        conditional(result)
    }

    /// Deletes an item under a condition.
    pub async fn delete(&self, key: &Key, condition: &Expression) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&*self.name)
            .key(attr::PK, AttributeValue::S(key.pk.clone()))
            .key(attr::SK, AttributeValue::S(key.sk.clone()))
            .condition_expression(condition.text)
            .set_expression_attribute_names(Some(condition.names()))
            .set_expression_attribute_values(condition.values())
            .send()
            .await;
        conditional(result)
    }

    /// Creates a single-use item (an OAuth `state` nonce) that expires at `expires_at_epoch_s`
    /// (DynamoDB's TTL removes it later; [`Table::take_unexpired`] refuses it at once).
    pub async fn put_expiring(&self, mut item: Item, expires_at_epoch_s: i64) -> Result<(), StoreError> {
        item.insert(attr::EXPIRES_AT_EPOCH_S.to_owned(), AttributeValue::N(expires_at_epoch_s.to_string()));
        self.put(item, Condition::NotExists).await
    }

    /// Takes a single-use item, once: the delete is conditional on it still existing and not
    /// having expired, so a replayed or late redirect finds nothing.
    pub async fn take_unexpired<T: DeserializeOwned>(
        &self,
        key: &Key,
        now_epoch_s: i64,
    ) -> Result<Option<T>, StoreError> {
        let Some(item) = self.get(key).await? else {
            return Ok(None);
        };
        let value = decode::<T>(item)?.value;
        let condition = Expression {
            text: "attribute_exists(#pk) AND #expires > :now",
            names: vec![("#pk", attr::PK), ("#expires", attr::EXPIRES_AT_EPOCH_S)],
            values: vec![(":now", AttributeValue::N(now_epoch_s.to_string()))],
        };
        match self.delete(key, &condition).await {
            Ok(()) => Ok(Some(value)),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// How many items a partition (of the base table, or of `GSI1` when `index` names it) holds
    /// under a sort-key prefix: `Select: COUNT`, so only keys are read, one call per MB of them.
    pub async fn count(
        &self,
        index: Option<&'static str>,
        partition: &str,
        sort_prefix: Option<&str>,
    ) -> Result<u64, StoreError> {
        let (pk_attr, sk_attr) = match index {
            None => (attr::PK, attr::SK),
            Some(_) => (attr::GSI1_PK, attr::GSI1_SK),
        };
        let (mut total, mut start) = (0u64, None);
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&*self.name)
                .set_index_name(index.map(str::to_owned))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .expression_attribute_names("#pk", pk_attr)
                .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
                .set_exclusive_start_key(start);
            request = match sort_prefix {
                Some(prefix) => request
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", sk_attr)
                    .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned())),
                None => request.key_condition_expression("#pk = :pk"),
            };
            let out = request.send().await.map_err(sdk_error)?;
            total += out.count.max(0) as u64;
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(total),
            }
        }
    }

    /// Adds `delta` to a number attribute of a tenant's counter item, creating both if missing
    /// (`ADD`): a counter kept in the transaction of what it counts.
    pub fn transact_increment(
        &self,
        key: &Key,
        entity: &str,
        vendor: &VendorId,
        attribute: &str,
        delta: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&*self.name)
            .key(attr::PK, AttributeValue::S(key.pk.clone()))
            .key(attr::SK, AttributeValue::S(key.sk.clone()))
            .update_expression("ADD #counter :delta SET #entity = :entity, #vendor = :vendor")
            .expression_attribute_names("#counter", attribute)
            .expression_attribute_names("#entity", attr::ENTITY)
            .expression_attribute_names("#vendor", attr::VENDOR_ID)
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
            .expression_attribute_values(":entity", AttributeValue::S(entity.to_owned()))
            .expression_attribute_values(":vendor", AttributeValue::S(vendor.to_string()))
            .build()
            .map_err(|e| StoreError::Sdk(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A put for use inside [`Table::transact`].
    pub fn transact_put(&self, item: Item, condition: Condition) -> Result<TransactWriteItem, StoreError> {
        let (expression, names, values) = condition_parts(condition);
        let put = Put::builder()
            .table_name(&*self.name)
            .set_item(Some(item))
            .set_condition_expression(expression.map(str::to_owned))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .map_err(|e| StoreError::Sdk(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// All-or-nothing write of up to 100 items. A transaction cancelled only because another
    /// one held an item (`TransactionConflict`: two writes to variants of one product both
    /// check the product) is tried again with jitter; it either happened whole or not at all.
    pub async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        for attempt in 0..=TRANSACTION_CONFLICT_RETRIES {
            if attempt > 0 {
                let wait = rand::Rng::random_range(&mut rand::rng(), 10..=(40u64 << attempt));
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            let result = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error() else {
                return Err(sdk_error(err));
            };
            let reasons = cancelled.cancellation_reasons();
            let failed: Vec<usize> = reasons
                .iter()
                .enumerate()
                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(i, _)| i)
                .collect();
            if !failed.is_empty() {
                return Err(StoreError::TransactionConditionFailed { failed });
            }
            if !reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
                return Err(sdk_error(err));
            }
        }
        Err(StoreError::Contention)
    }

    /// A put under a custom condition, for use inside [`Table::transact`].
    pub fn transact_put_if(&self, item: Item, condition: &Expression) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&*self.name)
            .set_item(Some(item))
            .condition_expression(condition.text)
            .set_expression_attribute_names(Some(condition.names()))
            .set_expression_attribute_values(condition.values())
            .build()
            .map_err(|e| StoreError::Sdk(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A delete for use inside [`Table::transact`].
    pub fn transact_delete(&self, key: &Key, condition: &Expression) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&*self.name)
            .key(attr::PK, AttributeValue::S(key.pk.clone()))
            .key(attr::SK, AttributeValue::S(key.sk.clone()))
            .condition_expression(condition.text)
            .set_expression_attribute_names(Some(condition.names()))
            .set_expression_attribute_values(condition.values())
            .build()
            .map_err(|e| StoreError::Sdk(e.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A condition on an item the transaction does not write (a lock, a parent's state).
    pub fn transact_check(&self, key: &Key, condition: &Expression) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&*self.name)
            .key(attr::PK, AttributeValue::S(key.pk.clone()))
            .key(attr::SK, AttributeValue::S(key.sk.clone()))
            .condition_expression(condition.text)
            .set_expression_attribute_names(Some(condition.names()))
            .set_expression_attribute_values(condition.values())
            .build()
            .map_err(|e| StoreError::Sdk(e.to_string()))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Adds `delta` to a number attribute and bumps the item's version, under `condition`:
    /// a counter that moves without a read (stock), while writers of the whole item, which
    /// condition on the version, see the change and read again.
    pub fn transact_add(
        &self,
        key: &Key,
        attribute: &'static str,
        delta: i64,
        condition: &Expression,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut names = condition.names();
        names.insert("#add_attr".to_owned(), attribute.to_owned());
        names.insert("#add_version".to_owned(), attr::VERSION.to_owned());
        let mut values = condition.values().unwrap_or_default();
        values.insert(":add_delta".to_owned(), AttributeValue::N(delta.to_string()));
        values.insert(":add_one".to_owned(), AttributeValue::N("1".to_owned()));
        let update = Update::builder()
            .table_name(&*self.name)
            .key(attr::PK, AttributeValue::S(key.pk.clone()))
            .key(attr::SK, AttributeValue::S(key.sk.clone()))
            .update_expression("SET #add_attr = #add_attr + :add_delta, #add_version = #add_version + :add_one")
            .condition_expression(condition.text)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::Sdk(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Unconditional puts of many items: ⌈n/25⌉ BatchWriteItem calls, a few in flight at
    /// once, unprocessed items retried with backoff. Not atomic: callers make the items
    /// idempotent (deterministic keys, full-item puts) so a retry after a failure is safe.
    /// Returns the number of BatchWriteItem calls made.
    pub async fn batch_put(&self, items: Vec<Item>) -> Result<u32, StoreError> {
        use futures_util::StreamExt;
        let mut chunks = Vec::new();
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push(items.by_ref().take(BATCH_WRITE_LIMIT).collect::<Vec<_>>());
        }
        let results: Vec<Result<u32, StoreError>> = futures_util::stream::iter(chunks)
            .map(|chunk| self.batch_put_chunk(chunk))
            .buffer_unordered(BATCH_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().sum()
    }

    async fn batch_put_chunk(&self, chunk: Vec<Item>) -> Result<u32, StoreError> {
        let mut pending: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
        for item in chunk {
            let put = PutRequest::builder().set_item(Some(item)).build().map_err(|e| StoreError::Sdk(e.to_string()))?;
            pending.push(WriteRequest::builder().put_request(put).build());
        }
        let mut calls = 0;
        for attempt in 0..=BATCH_RETRIES {
            if attempt > 0 {
                // Exponential backoff with full jitter: 25 ms, 50 ms, ... capped at 2 s.
                let cap = (25u64 << attempt.min(7)).min(2_000);
                let wait = rand::Rng::random_range(&mut rand::rng(), 0..=cap);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            calls += 1;
            let out = self
                .client
                .batch_write_item()
                .request_items(&*self.name, std::mem::take(&mut pending))
                .send()
                .await
                .map_err(sdk_error)?;
            pending = out.unprocessed_items.and_then(|mut left| left.remove(&*self.name)).unwrap_or_default();
            if pending.is_empty() {
                return Ok(calls);
            }
        }
        Err(StoreError::Sdk(format!("{} items still unprocessed after {BATCH_RETRIES} retries", pending.len())))
    }

    /// Strongly consistent reads of many items: ⌈n/100⌉ BatchGetItem calls, unprocessed keys
    /// retried with backoff. Items come back in no particular order; missing ones are absent.
    pub async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        // BatchGetItem refuses a request naming one key twice.
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<&Key> = keys.iter().filter(|k| seen.insert((k.pk.as_str(), k.sk.as_str()))).collect();
        let mut found = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(BATCH_GET_LIMIT) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|k| {
                    HashMap::from([
                        (attr::PK.to_owned(), AttributeValue::S(k.pk.clone())),
                        (attr::SK.to_owned(), AttributeValue::S(k.sk.clone())),
                    ])
                })
                .collect();
            for attempt in 0..=BATCH_RETRIES {
                if attempt > 0 {
                    let cap = (25u64 << attempt.min(7)).min(2_000);
                    let wait = rand::Rng::random_range(&mut rand::rng(), 0..=cap);
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Sdk(e.to_string()))?;
                let out =
                    self.client.batch_get_item().request_items(&*self.name, request).send().await.map_err(sdk_error)?;
                found.extend(out.responses.and_then(|mut r| r.remove(&*self.name)).unwrap_or_default());
                pending = out
                    .unprocessed_keys
                    .and_then(|mut left| left.remove(&*self.name))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Sdk(format!(
                    "{} keys still unprocessed after {BATCH_RETRIES} retries",
                    pending.len()
                )));
            }
        }
        Ok(found)
    }

    /// Every item of a partition (or of a sort-key prefix in it), read page by page with
    /// strongly consistent reads: for use cases that must see all of a bounded set (a
    /// product's variants) before they write.
    pub async fn query_all(&self, partition: &str, sort_prefix: Option<&str>) -> Result<Vec<Item>, StoreError> {
        self.query_all_where(partition, sort_prefix.map(SortKeys::Prefix)).await
    }

    /// Every item of a partition whose sort key lies in `[from, to]` (inclusive), strongly
    /// consistent, all pages.
    pub async fn query_range(&self, partition: &str, from: &str, to: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all_where(partition, Some(SortKeys::Between(from, to))).await
    }

    async fn query_all_where(&self, partition: &str, sort: Option<SortKeys<'_>>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&*self.name)
                .consistent_read(true)
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
                .set_exclusive_start_key(start);
            request = match sort {
                Some(SortKeys::Prefix(prefix)) => request
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", attr::SK)
                    .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned())),
                Some(SortKeys::Between(from, to)) => request
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                    .expression_attribute_names("#sk", attr::SK)
                    .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
                    .expression_attribute_values(":to", AttributeValue::S(to.to_owned())),
                None => request.key_condition_expression("#pk = :pk"),
            };
            let out = request.send().await.map_err(sdk_error)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// One page decoded into entities (one Query call).
    pub async fn query_entities<T: DeserializeOwned>(
        &self,
        q: QueryPage<'_>,
    ) -> Result<(Vec<Versioned<T>>, Option<Cursor>), StoreError> {
        let Page { items, next } = self.query(q).await?;
        Ok((items.into_iter().map(decode).collect::<Result<_, _>>()?, next))
    }

    /// One Query call: one page of a partition, optionally limited to a sort-key prefix.
    pub async fn query(&self, q: QueryPage<'_>) -> Result<Page, StoreError> {
        let (pk_attr, sk_attr) = match q.index {
            None => (attr::PK, attr::SK),
            Some(_) => (attr::GSI1_PK, attr::GSI1_SK),
        };
        let start =
            q.cursor.map(|c| c.start_key(pk_attr, &q.partition, sk_attr, q.sort_prefix.as_deref())).transpose()?;
        let mut request = self
            .client
            .query()
            .table_name(&*self.name)
            .set_index_name(q.index.map(str::to_owned))
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", AttributeValue::S(q.partition.clone()))
            .limit(q.limit.clamp(1, 100))
            .scan_index_forward(!q.descending)
            .set_exclusive_start_key(start);
        if let Some(filter) = &q.filter {
            request = request.filter_expression(filter.text);
            for (name, attribute) in &filter.names {
                request = request.expression_attribute_names(*name, *attribute);
            }
            for (name, value) in &filter.values {
                request = request.expression_attribute_values(*name, value.clone());
            }
        }
        request = match &q.sort_prefix {
            Some(prefix) => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", sk_attr)
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone())),
            None => request.key_condition_expression("#pk = :pk"),
        };
        let out = request.send().await.map_err(sdk_error)?;
        let next = out.last_evaluated_key.as_ref().map(Cursor::from_last_key).transpose()?;
        Ok(Page { items: out.items.unwrap_or_default(), next })
    }
}

type ConditionParts = (Option<&'static str>, Option<HashMap<String, String>>, Option<HashMap<String, AttributeValue>>);

fn condition_parts(condition: Condition) -> ConditionParts {
    match condition {
        Condition::Always => (None, None, None),
        Condition::NotExists => {
            (Some("attribute_not_exists(#pk)"), Some(HashMap::from([("#pk".to_owned(), attr::PK.to_owned())])), None)
        }
        Condition::VersionIs(version) => (
            Some("#version = :expected"),
            Some(HashMap::from([("#version".to_owned(), attr::VERSION.to_owned())])),
            Some(HashMap::from([(":expected".to_owned(), AttributeValue::N(version.to_string()))])),
        ),
    }
}

/// An entity as stored: its fields plus the shared attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// Encodes an entity into an item under `key`. Tenant items pass their vendor, which is
/// stored beside the keys so a whole-table audit can check every key against it.
pub fn encode<T: Serialize>(
    key: &Key,
    entity: &str,
    vendor: Option<&VendorId>,
    version: u64,
    value: &T,
) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.insert(attr::PK.to_owned(), AttributeValue::S(key.pk.clone()));
    item.insert(attr::SK.to_owned(), AttributeValue::S(key.sk.clone()));
    item.insert(attr::ENTITY.to_owned(), AttributeValue::S(entity.to_owned()));
    item.insert(attr::VERSION.to_owned(), AttributeValue::N(version.to_string()));
    if let Some(vendor) = vendor {
        item.insert(attr::VENDOR_ID.to_owned(), AttributeValue::S(vendor.to_string()));
    }
    Ok(item)
}

pub fn decode<T: DeserializeOwned>(mut item: Item) -> Result<Versioned<T>, StoreError> {
    let version = match item.get(attr::VERSION) {
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| StoreError::Corrupt("version is not a number".into()))?,
        _ => return Err(StoreError::Corrupt("item has no version".into())),
    };
    // The shared attributes are the store's, not the entity's (entities may deny unknown fields).
    for name in attr::RESERVED {
        item.remove(*name);
    }
    let value = serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Versioned { value, version })
}
