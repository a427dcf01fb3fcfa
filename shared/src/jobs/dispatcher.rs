//! Sends jobs to their queues. The queue of a job type is found from the type alone
//! (`BESTOW_QUEUE_<TYPE>`, set by the template), so callers never name a queue.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::{Envelope, Job};
use crate::error::ApiError;
use crate::tenancy::TenantScope;

/// SQS takes at most 10 messages per SendMessageBatch.
pub const SQS_BATCH_LIMIT: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("no queue is configured for job type {0} (BESTOW_QUEUE_{upper})", upper = .0.to_uppercase())]
    NoQueue(&'static str),
    #[error("job payload does not serialise: {0}")]
    Payload(String),
    #[error("sqs: {0}")]
    Sqs(String),
}

impl From<DispatchError> for ApiError {
    fn from(err: DispatchError) -> Self {
        ApiError::internal(err)
    }
}

#[derive(Clone)]
pub struct Dispatcher {
    clients: crate::app::SdkClients,
    /// Built on first use (most functions never queue a job).
    sqs: Arc<std::sync::OnceLock<aws_sdk_sqs::Client>>,
    /// Job type → queue URL.
    queues: Arc<BTreeMap<String, String>>,
}

impl Dispatcher {
    pub fn new(clients: crate::app::SdkClients, queues: BTreeMap<String, String>) -> Self {
        Self { clients, sqs: Arc::default(), queues: Arc::new(queues) }
    }

    fn queue<J: Job>(&self) -> Result<&str, DispatchError> {
        self.queues.get(J::TYPE).map(String::as_str).ok_or(DispatchError::NoQueue(J::TYPE))
    }

    /// Enqueues one job for the scope's vendor; returns its job id.
    pub async fn enqueue<J: Job>(&self, scope: &TenantScope, job: &J) -> Result<String, DispatchError> {
        Ok(self.enqueue_batch(scope, std::slice::from_ref(job)).await?.remove(0))
    }

    /// Enqueues jobs ten per SendMessageBatch call; returns their job ids in order. A batch
    /// entry SQS refuses is an error naming how many were refused (the others are sent:
    /// jobs are idempotent, so the caller may simply enqueue all of them again).
    pub async fn enqueue_batch<J: Job>(&self, scope: &TenantScope, jobs: &[J]) -> Result<Vec<String>, DispatchError> {
        let queue = self.queue::<J>()?;
        let mut ids = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(SQS_BATCH_LIMIT) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, job) in chunk.iter().enumerate() {
                let envelope = Envelope::new(scope, job).map_err(|e| DispatchError::Payload(e.to_string()))?;
                let body = serde_json::to_string(&envelope).map_err(|e| DispatchError::Payload(e.to_string()))?;
                let job_type = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(J::TYPE)
                    .build()
                    .map_err(|e| DispatchError::Sqs(e.to_string()))?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .message_attributes("job_type", job_type)
                        .build()
                        .map_err(|e| DispatchError::Sqs(e.to_string()))?,
                );
                ids.push(envelope.job_id);
            }
            let sent = self
                .sqs
                .get_or_init(|| self.clients.sqs())
                .send_message_batch()
                .queue_url(queue)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| DispatchError::Sqs(DisplayErrorContext(e).to_string()))?;
            if !sent.failed.is_empty() {
                return Err(DispatchError::Sqs(format!("{} of {} messages refused", sent.failed.len(), chunk.len())));
            }
        }
        Ok(ids)
    }
}
