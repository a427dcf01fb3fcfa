//! The SQS worker runtime: decodes each record into its typed job, claims its idempotency
//! record, runs the handler, records the outcome, and answers `batchItemFailures` so that
//! only the failed messages return to the queue.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use tracing::Instrument;

use super::idempotency::{Claim, IdempotencyStore, now_ms, payload_hash};
use super::{Envelope, Job, JobCtx, JobError, JobHandler};
use crate::app::App;
use crate::tenancy::guard;

/// Time kept back from the deadline to record a job's outcome and answer the batch.
const HANDLER_MARGIN_MS: i64 = 2_000;

/// What became of one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran now.
    Done,
    /// A duplicate of a finished job: nothing ran.
    Duplicate,
    /// Will never succeed: recorded (or logged, if undecodable) and not retried.
    Permanent,
    /// Returned to the queue.
    Retry,
}

/// Runs a worker as a Lambda function: init once per cold start, then serve batches.
pub async fn serve<H: JobHandler>(handler: H) -> Result<(), crate::http::LambdaError> {
    crate::telemetry::init();
    let app = App::from_env()?;
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (app, handler) = (app.clone(), Arc::clone(&handler));
        async move {
            let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
            Ok::<_, std::convert::Infallible>(process_batch(&app, handler, event.payload, deadline_ms).await)
        }
    }))
    .await
}

/// Processes a batch concurrently and reports the messages to retry.
pub async fn process_batch<H: JobHandler>(
    app: &App,
    handler: Arc<H>,
    event: SqsEvent,
    deadline_ms: i64,
) -> SqsBatchResponse {
    let mut tasks = tokio::task::JoinSet::new();
    let mut message_of_task = std::collections::HashMap::new();
    for message in event.records {
        let (app, handler) = (app.clone(), Arc::clone(&handler));
        let id = message.message_id.clone().unwrap_or_default();
        let task = tasks.spawn(async move { process_message(&app, &*handler, message, deadline_ms).await });
        message_of_task.insert(task.id(), id);
    }
    let mut response = SqsBatchResponse::default();
    while let Some(joined) = tasks.join_next_with_id().await {
        let (task, retry) = match joined {
            Ok((task, outcome)) => (task, outcome == Outcome::Retry),
            // A panicking job must not take its neighbours with it: only its message returns.
            Err(err) => {
                tracing::error!(error = %err, "job task panicked");
                (err.id(), true)
            }
        };
        if let (true, Some(id)) = (retry, message_of_task.remove(&task)) {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// One message, start to finish. Never panics, never fails the batch.
pub async fn process_message<H: JobHandler>(app: &App, handler: &H, message: SqsMessage, deadline_ms: i64) -> Outcome {
    let message_id = message.message_id.clone().unwrap_or_default();
    let receive_count = message.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
    let span = tracing::info_span!(
        "job",
        job_type = H::Job::TYPE,
        message_id = %message_id,
        receive_count,
        job_id = tracing::field::Empty,
        vendor_id = tracing::field::Empty,
    );
    async move {
        let envelope: Envelope = match message.body.as_deref().map(serde_json::from_str) {
            Some(Ok(envelope)) => envelope,
            _ => {
                // Enough to find the message again in an archive or a capture, nothing of its content.
                let body = message.body.as_deref().unwrap_or_default();
                let body_sha256 = payload_hash(&serde_json::Value::String(body.to_owned()));
                tracing::error!(body_bytes = body.len(), %body_sha256, "undecodable message: not an envelope; dropped as a permanent failure");
                return Outcome::Permanent;
            }
        };
        let span = tracing::Span::current();
        span.record("job_id", envelope.job_id.as_str());
        span.record("vendor_id", envelope.vendor_id.as_str());
        if envelope.job_type != H::Job::TYPE {
            tracing::error!(found = %envelope.job_type, "message of another job type on this queue; dropped");
            return Outcome::Permanent;
        }
        let job: H::Job = match serde_json::from_value(envelope.payload.clone()) {
            Ok(job) => job,
            Err(err) => {
                tracing::error!(error = %err, "undecodable payload; dropped as a permanent failure");
                return Outcome::Permanent;
            }
        };
        let Ok(scope) = guard::job_scope(&envelope.vendor_id, H::Job::TYPE) else {
            tracing::error!("envelope names no valid vendor; dropped");
            return Outcome::Permanent;
        };
        let kind = format!("job:{}", H::Job::TYPE);
        let hash = payload_hash(&envelope.payload);
        // The key comes from the typed job, not from the envelope: whoever produced the
        // message, the same job is the same effect.
        let key = job.idempotency_key();
        if key != envelope.idempotency_key {
            tracing::warn!(envelope_key = %envelope.idempotency_key, %key, "envelope key differs from the job's; the job's is used");
        }
        let store = IdempotencyStore::new(&app.table, &scope);
        // The claim lasts until the function's deadline: if this invocation dies, the next
        // delivery (after the visibility timeout) finds it expired and runs the job.
        let claim_id = match store.claim(&kind, &key, &hash, deadline_ms, now_ms()).await {
            Ok(Claim::Acquired(claim_id)) => claim_id,
            Ok(Claim::Completed(_)) | Ok(Claim::Failed(_)) => {
                tracing::info!("duplicate delivery of a finished job; skipped");
                return Outcome::Duplicate;
            }
            Ok(Claim::InProgress) => {
                tracing::warn!("job is in progress elsewhere; returned to the queue");
                return Outcome::Retry;
            }
            Ok(Claim::PayloadMismatch) => {
                tracing::error!(%key, "idempotency key reused with another payload; dropped");
                return Outcome::Permanent;
            }
            Err(err) => {
                tracing::error!(error = %err, "idempotency claim failed; returned to the queue");
                return Outcome::Retry;
            }
        };
        // The handler must finish before the claim expires and before the function is killed
        // (which would return the whole batch): past the budget, it is a retryable failure.
        let budget_ends_ms = deadline_ms - HANDLER_MARGIN_MS;
        let budget = std::time::Duration::from_millis((budget_ends_ms - now_ms()).max(0) as u64);
        let ctx = JobCtx {
            app: app.clone(),
            scope: scope.clone(),
            job_id: envelope.job_id.clone(),
            receive_count,
            budget_ends_ms,
        };
        let outcome = match tokio::time::timeout(budget, handler.handle(&ctx, job)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(JobError::Retryable(format!("did not finish within {} ms", budget.as_millis()))),
        };
        match outcome {
            Ok(result) => {
                if let Err(err) = store.complete(&kind, &key, &claim_id, &result, now_ms()).await {
                    // The effect happened; a redelivery would repeat it only after the claim
                    // expires, and the claim is ours until the deadline.
                    tracing::error!(error = %err, "job done but its record was not completed");
                }
                tracing::info!("job done");
                Outcome::Done
            }
            Err(JobError::Retryable(why)) => {
                tracing::warn!(error = %why, "job failed; will retry");
                if let Err(err) = store.release(&kind, &key, &claim_id).await {
                    tracing::error!(error = %err, "could not release the claim; the retry waits for its expiry");
                }
                Outcome::Retry
            }
            Err(JobError::Permanent(why)) => {
                tracing::error!(error = %why, "job failed permanently; not retried");
                if let Err(err) = store.fail(&kind, &key, &claim_id, &why, now_ms()).await {
                    tracing::error!(error = %err, "could not record the permanent failure");
                }
                Outcome::Permanent
            }
        }
    }
    .instrument(span)
    .await
}
