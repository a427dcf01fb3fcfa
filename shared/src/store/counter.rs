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
}

impl CallCounter {
    /// Calls so far, by operation.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
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
        // JSON-protocol services name the operation in X-Amz-Target; others by method + path.
        let operation =
            request.headers().get("x-amz-target").map(str::to_owned).unwrap_or_else(|| {
                format!("{} {}", request.method(), request.uri().split('?').next().unwrap_or_default())
            });
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()).entry(operation).or_default() += 1;
        Ok(())
    }
}
