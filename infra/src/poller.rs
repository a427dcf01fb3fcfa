//! Local SQS event sources: one poller per worker queue, with the semantics of Lambda's
//! SQS event source mapping — batches up to the template's BatchSize, the same handler the
//! worker binary runs, only the messages named in `batchItemFailures` left on the queue (they
//! come back after the visibility timeout, and moto moves them to the dead-letter queue
//! after `maxReceiveCount` receives), all others deleted.

use std::collections::HashSet;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use bestow::App;
use bestow::jobs::registry::WorkerDef;
use tokio::task::JoinHandle;

use crate::template::Template;

pub struct QueueWorker {
    pub def: &'static WorkerDef,
    pub queue_url: String,
    pub batch_size: i32,
    /// Pollers on this queue, as the event source's maximum concurrency.
    pub concurrency: usize,
    /// The function's time budget per batch, as its deadline.
    pub timeout_ms: i64,
}

/// The workers of every registered job type whose queue was provisioned.
pub fn workers(template: &Template, queue_urls: &std::collections::BTreeMap<String, String>) -> Vec<QueueWorker> {
    bestow::jobs::registry::ALL
        .iter()
        .filter_map(|def| {
            let source = template.queue_source(def.function)?;
            Some(QueueWorker {
                def,
                queue_url: queue_urls.get(&source.queue_logical_id)?.clone(),
                batch_size: source.batch_size.clamp(1, 10) as i32,
                concurrency: source.maximum_concurrency.clamp(1, 10) as usize,
                timeout_ms: template.function_timeout(def.function) * 1000,
            })
        })
        .collect()
}

pub fn spawn(app: &App, sqs: &aws_sdk_sqs::Client, workers: Vec<QueueWorker>) -> Vec<JoinHandle<()>> {
    workers
        .into_iter()
        .flat_map(|worker| {
            let worker = std::sync::Arc::new(worker);
            (0..worker.concurrency)
                .map(|_| {
                    let (app, sqs, worker) = (app.clone(), sqs.clone(), std::sync::Arc::clone(&worker));
                    tokio::spawn(async move { poll(app, sqs, worker).await })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

async fn poll(app: App, sqs: aws_sdk_sqs::Client, worker: std::sync::Arc<QueueWorker>) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&worker.queue_url)
            .max_number_of_messages(worker.batch_size)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(err) => {
                tracing::warn!(queue = %worker.queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(err), "receive failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let receipts: Vec<(String, String)> = messages
            .iter()
            .map(|m| (m.message_id.clone().unwrap_or_default(), m.receipt_handle.clone().unwrap_or_default()))
            .collect();
        let mut event = SqsEvent::default();
        event.records = messages
            .into_iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id;
                record.receipt_handle = m.receipt_handle;
                record.body = m.body;
                record.md5_of_body = m.md5_of_body;
                record.attributes =
                    m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
                record.event_source = Some("aws:sqs".to_owned());
                record
            })
            .collect();
        let received = event.records.len();
        let response = (worker.def.run)(app.clone(), event, now_ms() + worker.timeout_ms).await;
        let failed: HashSet<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = receipts
            .iter()
            .filter(|(id, _)| !failed.contains(id))
            .enumerate()
            .filter_map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build().ok()
            })
            .collect();
        if !done.is_empty()
            && let Err(err) =
                sqs.delete_message_batch().queue_url(&worker.queue_url).set_entries(Some(done)).send().await
        {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(err), "delete failed; the messages will be redelivered");
        }
        tracing::info!(job_type = worker.def.job_type, received, retried = failed.len(), "jobs: batch processed");
    }
}
