//! Async jobs (C6): one contract for every job type, a typed dispatcher, the SQS worker
//! runtime and the idempotency store.
//!
//! Adding a job type is: a `Job` payload type and its `JobHandler` in its domain's `jobs.rs`,
//! an entry in [`registry`], a binary in `functions/`, and its queue, DLQ and function in
//! `template.yaml`. Queueing, retry, idempotency and dead-lettering do not change.

pub mod dispatcher;
pub mod envelope;
pub mod idempotency;
pub mod records;
pub mod registry;
pub mod routes;
pub mod schedule;
pub mod worker;

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::tenancy::TenantScope;

pub use dispatcher::Dispatcher;
pub use envelope::Envelope;

/// A job type: its payload, its stable name and what makes two messages the same effect.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stable and explicit: it names the queue, the envelope's `type` and the idempotency
    /// records' key prefix, so a refactor (renaming the Rust type) orphans nothing.
    const TYPE: &'static str;

    /// Two jobs with the same key are the same effect: the second is not run.
    fn idempotency_key(&self) -> String;
}

/// What a failed job asks of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try (a timeout, a 4xx SMTP reply, throttling): the message returns to
    /// the queue and, after `maxReceiveCount` tries, lands in the dead-letter queue.
    #[error("retryable: {0}")]
    Retryable(String),
    /// Will fail the same way every time (bad payload, missing configuration): recorded and
    /// not retried.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A store failure in a job is worth another try (throttling, a conflict, a timeout); a
/// handler that knows better maps it itself.
impl From<crate::store::StoreError> for JobError {
    fn from(err: crate::store::StoreError) -> Self {
        JobError::Retryable(err.to_string())
    }
}

/// What a handler gets besides its payload.
pub struct JobCtx {
    pub app: App,
    /// The vendor the job runs for, from the envelope, through `tenancy::guard::job_scope`.
    pub scope: TenantScope,
    pub job_id: String,
    /// How many times SQS has delivered this message (1 on the first try).
    pub receive_count: u32,
    /// When the runtime stops waiting for the handler (ms since the epoch): a handler that
    /// must clean up on its last try (release a lock) stops its work before this.
    pub budget_ends_ms: i64,
}

/// Runs one job type. `handle` returns a JSON summary that the idempotency record keeps.
pub trait JobHandler: Send + Sync + 'static {
    type Job: Job;

    fn handle(&self, ctx: &JobCtx, job: Self::Job) -> impl Future<Output = Result<serde_json::Value, JobError>> + Send;
}

/// The job payload inside a sample SQS event of `events/` (for tests that hold the samples to
/// their job types).
#[cfg(test)]
pub(crate) fn sample_payload(event: &str) -> serde_json::Value {
    let event: serde_json::Value = serde_json::from_str(event).unwrap_or_default();
    let body = event["Records"][0]["body"].as_str().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(body).unwrap_or_default()["payload"].clone()
}
