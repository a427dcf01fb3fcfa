//! Counts the AWS calls a piece of code makes, per operation (`DynamoDB_20120810.PutItem`,
//! `AmazonSQS.SendMessageBatch`, …): an SDK interceptor for tests and benchmarks, so round
//! trips are asserted and measured, not guessed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    calls: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Each call in order, with the item keys a DynamoDB call names (for failure messages).
    trail: Arc<Mutex<Vec<String>>>,
}

/// `PK/SK` of the keys a DynamoDB request names (`Key`, `Item`, and those in transactions and
/// batches), or the table index a Query names.
fn keys_named(body: &[u8]) -> String {
    fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let (Some(pk), Some(sk)) = (map.get("PK"), map.get("SK")) {
                    found.push(format!("{}|{}", pk["S"].as_str().unwrap_or("?"), sk["S"].as_str().unwrap_or("?")));
                    return;
                }
                if let Some(condition) = map.get("KeyConditionExpression").and_then(|c| c.as_str()) {
                    let values = map.get("ExpressionAttributeValues").map(|v| v.to_string()).unwrap_or_default();
                    found.push(format!("query {condition} {values}"));
                    return;
                }
                map.values().for_each(|v| walk(v, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        walk(&value, &mut found);
    }
    found.join(", ")
}

impl CallCounter {
    /// Calls so far, by operation.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.trail.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Every call since the last reset, in order, with the keys it named.
    pub fn trail(&self) -> Vec<String> {
        self.trail.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Calls of operations whose name starts with `prefix` (`DynamoDB`, `AmazonSQS`).
    pub fn total(&self, prefix: &str) -> u64 {
        self.snapshot().iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    // Once per attempt, so a retried call counts twice: a round trip is a round trip.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        // A presigned URL (an upload or download link) runs the SDK's pipeline up to here but
        // is never sent: not a round trip.
        if request.uri().contains("X-Amz-Signature=") {
            return Ok(());
        }
        // JSON-protocol services name the operation in X-Amz-Target; others by method + path.
        let operation =
            request.headers().get("x-amz-target").map(str::to_owned).unwrap_or_else(|| {
                format!("{} {}", request.method(), request.uri().split('?').next().unwrap_or_default())
            });
        let keys = request.body().bytes().map(keys_named).unwrap_or_default();
        self.trail.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{operation} {keys}"));
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()).entry(operation).or_default() += 1;
        Ok(())
    }
}
