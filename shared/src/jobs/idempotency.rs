//! Idempotency records, with the semantics of Powertools for AWS Lambda's idempotency
//! utility: `in_progress` (with an expiry in milliseconds bounded by the function's remaining
//! time, so a crashed attempt can be retried), `completed` (with the result, until the TTL in
//! seconds), a payload hash so the same key with another payload is an error, never a
//! silent skip. Claiming is one conditional PutItem that returns the old record when it
//! fails, and the hash is checked on that old record too.

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use crate::store::{Expression, Item, Key, PutOutcome, StoreError, Table, attr, keys};
use crate::tenancy::{PlatformScope, TenantScope};

const STATUS: &str = "status";
const PAYLOAD_HASH: &str = "payload_hash";
/// Milliseconds since the epoch (the Lambda deadline's unit).
const IN_PROGRESS_EXPIRY_MS: &str = "in_progress_expiry_ms";
const RESULT: &str = "result";
/// Who holds an in-progress claim (a fresh id per claim).
const CLAIM_ID: &str = "claim_id";
const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";
const FAILED: &str = "failed";

/// How long a finished record answers duplicates (24 h).
pub const RECORD_TTL_SECONDS: i64 = 24 * 3600;

/// What a claim found.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// This caller owns the effect now, under this claim id (needed to complete, fail or
    /// release it: a claim that expired and was taken over is no longer this caller's).
    Acquired(String),
    /// Done before: here is what it produced.
    Completed(serde_json::Value),
    /// Failed permanently before: here is why.
    Failed(String),
    /// Someone else is on it and their claim has not expired.
    InProgress,
    /// The key was used with another payload.
    PayloadMismatch,
}

/// The sha-256 of the canonical JSON of a payload, hex.
pub fn payload_hash(payload: &serde_json::Value) -> String {
    let digest = Sha256::digest(payload.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whose records: a vendor's (jobs, tenant routes) or the platform's (platform routes).
#[derive(Clone, Copy)]
pub enum Owner<'a> {
    Tenant(&'a TenantScope),
    Platform(&'a PlatformScope),
}

/// The record is still this caller's in-progress claim.
fn still_claimed(claim_id: &str) -> Expression {
    Expression {
        text: "#status = :in_progress AND #claim = :claim",
        names: vec![("#status", STATUS), ("#claim", CLAIM_ID)],
        values: vec![
            (":in_progress", AttributeValue::S(IN_PROGRESS.into())),
            (":claim", AttributeValue::S(claim_id.into())),
        ],
    }
}

pub struct IdempotencyStore<'a> {
    table: &'a Table,
    owner: Owner<'a>,
}

fn s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl<'a> IdempotencyStore<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, owner: Owner::Tenant(scope) }
    }

    pub fn for_owner(table: &'a Table, owner: Owner<'a>) -> Self {
        Self { table, owner }
    }

    fn record_key(&self, kind: &str, key: &str) -> Key {
        match self.owner {
            Owner::Tenant(scope) => keys::idempotency_key(scope, kind, key),
            Owner::Platform(scope) => keys::platform_idempotency_key(scope, kind, key),
        }
    }

    /// `kind` keeps job and HTTP keys apart (`job:email_dispatch`, `http:vendors-create`).
    pub async fn claim(
        &self,
        kind: &str,
        key: &str,
        hash: &str,
        in_progress_until_ms: i64,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        let record_key = self.record_key(kind, key);
        let mut item = Item::new();
        item.insert(attr::PK.into(), AttributeValue::S(record_key.pk.clone()));
        item.insert(attr::SK.into(), AttributeValue::S(record_key.sk.clone()));
        item.insert(attr::ENTITY.into(), AttributeValue::S("idempotency_record".into()));
        if let Owner::Tenant(scope) = self.owner {
            item.insert(attr::VENDOR_ID.into(), AttributeValue::S(scope.vendor_id().to_string()));
        }
        item.insert(STATUS.into(), AttributeValue::S(IN_PROGRESS.into()));
        item.insert(PAYLOAD_HASH.into(), AttributeValue::S(hash.into()));
        let claim_id = crate::store::ids::new_id();
        item.insert(CLAIM_ID.into(), AttributeValue::S(claim_id.clone()));
        item.insert(IN_PROGRESS_EXPIRY_MS.into(), n(in_progress_until_ms));
        item.insert(attr::EXPIRES_AT_EPOCH_S.into(), n(now_ms / 1000 + RECORD_TTL_SECONDS));
        // Free, or a crashed claim past its expiry, or a record past its TTL that DynamoDB has
        // not deleted yet (TTL deletion lags).
        let condition = Expression {
            text: "attribute_not_exists(#pk) OR (#status = :in_progress AND #expiry < :now_ms) OR #ttl < :now_s",
            names: vec![
                ("#pk", attr::PK),
                ("#status", STATUS),
                ("#expiry", IN_PROGRESS_EXPIRY_MS),
                ("#ttl", attr::EXPIRES_AT_EPOCH_S),
            ],
            values: vec![
                (":in_progress", AttributeValue::S(IN_PROGRESS.into())),
                (":now_ms", n(now_ms)),
                (":now_s", n(now_ms / 1000)),
            ],
        };
        match self.table.put_unless(item, &condition).await? {
            PutOutcome::Written => Ok(Claim::Acquired(claim_id)),
            PutOutcome::Refused(None) => Ok(Claim::InProgress),
            PutOutcome::Refused(Some(old)) => Ok(match (s(&old, PAYLOAD_HASH), s(&old, STATUS).as_deref()) {
                (Some(old_hash), _) if old_hash != hash => Claim::PayloadMismatch,
                (_, Some(COMPLETED)) => Claim::Completed(
                    s(&old, RESULT).and_then(|r| serde_json::from_str(&r).ok()).unwrap_or(serde_json::Value::Null),
                ),
                (_, Some(FAILED)) => Claim::Failed(s(&old, RESULT).unwrap_or_default()),
                _ => Claim::InProgress,
            }),
        }
    }

    /// Marks a claimed record done with its result. Fails with `ConditionFailed` if the
    /// claim expired and someone else took it over meanwhile.
    pub async fn complete(
        &self,
        kind: &str,
        key: &str,
        claim_id: &str,
        result: &serde_json::Value,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.finish(kind, key, claim_id, COMPLETED, result.to_string(), now_ms).await
    }

    /// Records a permanent failure, so redeliveries are not run again.
    pub async fn fail(
        &self,
        kind: &str,
        key: &str,
        claim_id: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.finish(kind, key, claim_id, FAILED, error.to_owned(), now_ms).await
    }

    async fn finish(
        &self,
        kind: &str,
        key: &str,
        claim_id: &str,
        status: &str,
        result: String,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let record_key = self.record_key(kind, key);
        let condition = still_claimed(claim_id);
        let set = [
            (STATUS, AttributeValue::S(status.into())),
            (RESULT, AttributeValue::S(result)),
            (attr::EXPIRES_AT_EPOCH_S, n(now_ms / 1000 + RECORD_TTL_SECONDS)),
        ];
        self.table.update(&record_key, &set, &[IN_PROGRESS_EXPIRY_MS, CLAIM_ID], &condition).await
    }

    /// Gives a claim back after a retryable failure, so the next delivery can run.
    pub async fn release(&self, kind: &str, key: &str, claim_id: &str) -> Result<(), StoreError> {
        let record_key = self.record_key(kind, key);
        let condition = still_claimed(claim_id);
        self.table.delete(&record_key, &condition).await
    }
}

/// Milliseconds since the epoch: the unit of Lambda deadlines and of in-progress expiry.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
