//! Operations on the job queues: depths, peeking and redriving dead-letter queues, purging.
//! Works on any SQS endpoint the AWS configuration names: the local stack
//! (`AWS_ENDPOINT_URL`) or a deployed stage (normal credentials; queues found by name
//! prefix, e.g. the CloudFormation stack name).

use std::io::Write;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName, SendMessageBatchRequestEntry};

use crate::InfraError;

fn sqs_error(err: impl std::error::Error + 'static) -> InfraError {
    InfraError::Emulator(aws_sdk_sqs::error::DisplayErrorContext(err).to_string())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    pub name: String,
    pub url: String,
    pub visible: i64,
    pub in_flight: i64,
    pub delayed: i64,
    /// The queue whose redrive policy names this one, for a dead-letter queue.
    pub source_of: Vec<String>,
    /// This queue's dead-letter queue, by name.
    pub dead_letter: Option<String>,
}

fn name_of(url: &str) -> String {
    url.rsplit('/').next().unwrap_or(url).to_owned()
}

/// Every queue whose name starts with `prefix`, with its depths.
pub async fn list(sqs: &Client, prefix: &str) -> Result<Vec<QueueDepth>, InfraError> {
    let mut urls = Vec::new();
    let mut token = None;
    loop {
        let page = sqs.list_queues().queue_name_prefix(prefix).set_next_token(token).send().await.map_err(sqs_error)?;
        urls.extend(page.queue_urls.unwrap_or_default());
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let mut depths = Vec::new();
    for url in urls {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(sqs_error)?
            .attributes
            .unwrap_or_default();
        let number = |name: QueueAttributeName| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
        let dead_letter = attributes
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p["deadLetterTargetArn"].as_str().and_then(|arn| arn.rsplit(':').next()).map(str::to_owned));
        depths.push(QueueDepth {
            name: name_of(&url),
            visible: number(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: number(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
            url,
            source_of: Vec::new(),
            dead_letter,
        });
    }
    let links: Vec<(String, String)> =
        depths.iter().filter_map(|q| Some((q.dead_letter.clone()?, q.name.clone()))).collect();
    for (dead_letter, source) in links {
        if let Some(dlq) = depths.iter_mut().find(|q| q.name == dead_letter) {
            dlq.source_of.push(source);
        }
    }
    depths.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(depths)
}

/// A queue's URL from its name.
pub async fn url_of(sqs: &Client, name: &str) -> Result<String, InfraError> {
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(sqs_error)?
        .queue_url
        .ok_or_else(|| InfraError::Other(format!("no queue {name}")))
}

/// Up to `max` messages, made visible again at once (a peek still counts as a receive).
pub async fn peek(sqs: &Client, url: &str, max: i32) -> Result<Vec<(String, String, String)>, InfraError> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, 10))
        .visibility_timeout(0)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(sqs_error)?;
    Ok(out
        .messages
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let receives = m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                .cloned()
                .unwrap_or_default();
            (m.message_id.unwrap_or_default(), receives, m.body.unwrap_or_default())
        })
        .collect())
}

/// Progress of a long operation, drawn as a bar on a terminal (`\r`), a line per step otherwise.
pub struct Progress<'a> {
    pub label: &'a str,
    pub total: i64,
    pub out: Box<dyn Write + 'a>,
}

impl Progress<'_> {
    fn show(&mut self, done: i64) {
        let width = 30;
        let filled = if self.total > 0 { (done.min(self.total) * width / self.total) as usize } else { width as usize };
        let _ = write!(
            self.out,
            "\r{} [{}{}] {done}/{}",
            self.label,
            "#".repeat(filled),
            ".".repeat(width as usize - filled),
            self.total
        );
        let _ = self.out.flush();
    }
}

/// Moves the messages `from` holds when it starts back to `to` (send, then delete: a crash
/// in between duplicates a message, never loses one; jobs are idempotent). Stops after that
/// many, so messages that fail again and return meanwhile are not cycled. Returns how many moved.
pub async fn redrive(
    sqs: &Client,
    from: &str,
    to: &str,
    mut progress: Option<Progress<'_>>,
) -> Result<i64, InfraError> {
    let mut moved = 0;
    let total = depth(sqs, from).await?;
    while moved < total {
        let batch = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages((total - moved).clamp(1, 10) as i32)
            .wait_time_seconds(1)
            .visibility_timeout(30)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sqs_error)?
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body.clone().unwrap_or_default())
                    .set_message_attributes(m.message_attributes.clone())
                    .build()
                    .map_err(|e| InfraError::Other(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sent = sqs.send_message_batch().queue_url(to).set_entries(Some(entries)).send().await.map_err(sqs_error)?;
        let sent_ids: Vec<&str> = sent.successful.iter().map(|s| s.id.as_str()).collect();
        let deletes = batch
            .iter()
            .enumerate()
            .filter(|(i, _)| sent_ids.contains(&i.to_string().as_str()))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        if !deletes.is_empty() {
            let deleted = sqs
                .delete_message_batch()
                .queue_url(from)
                .set_entries(Some(deletes))
                .send()
                .await
                .map_err(sqs_error)?;
            if !deleted.failed.is_empty() {
                return Err(InfraError::Other(format!(
                    "{} messages were sent back but could not be deleted from the DLQ (they will be sent again)",
                    deleted.failed.len()
                )));
            }
        }
        moved += sent_ids.len() as i64;
        if let Some(p) = progress.as_mut() {
            p.show(moved);
        }
        if !sent.failed.is_empty() {
            return Err(InfraError::Other(format!(
                "{} messages could not be sent back; they stay in the DLQ",
                sent.failed.len()
            )));
        }
    }
    if let Some(p) = progress.as_mut() {
        let _ = writeln!(p.out);
    }
    Ok(moved)
}

/// Deletes every message of a queue; returns how many there were.
pub async fn purge(sqs: &Client, url: &str) -> Result<i64, InfraError> {
    let count = depth(sqs, url).await?;
    sqs.purge_queue().queue_url(url).send().await.map_err(sqs_error)?;
    Ok(count)
}

/// Messages waiting in a queue (visible ones).
pub async fn depth(sqs: &Client, url: &str) -> Result<i64, InfraError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(sqs_error)?
        .attributes
        .unwrap_or_default();
    Ok(attributes.get(&QueueAttributeName::ApproximateNumberOfMessages).and_then(|v| v.parse().ok()).unwrap_or(0))
}
