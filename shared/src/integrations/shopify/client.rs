//! The GraphQL Admin API transport: one shop, its token, and Shopify's cost-based throttle.
//!
//! Shopify meters GraphQL by query cost in a leaky bucket per app and shop
//! (<https://shopify.dev/docs/api/usage/limits#graphql-admin-api-rate-limits>): a query is only
//! run when its *requested* cost is available; every answer reports the bucket
//! (`extensions.cost.throttleStatus`). The client keeps that report and waits before a query
//! the bucket cannot hold yet, so it is rarely refused; a refusal (`THROTTLED`) waits for the
//! bucket to refill, a 429 waits for `Retry-After`, and 5xx and lost connections back off with
//! jitter. Other refusals are the caller's to handle.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{API_VERSION, ShopDomain, shop_base};
use crate::integrations::secrets::Redacted;

/// Well inside a Lambda's budget for one call; a slow answer is retried.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries per call: throttling waits are counted too, so a long throttle still ends.
const MAX_TRIES: u32 = 6;
/// The longest single wait the client accepts (a `Retry-After` beyond it is capped).
const MAX_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum ShopifyError {
    /// The token was refused (the app was uninstalled, or the token revoked).
    #[error("Shopify refused the shop's access token")]
    Unauthorized,
    /// Shopify answered that the request cannot succeed as it is.
    #[error("Shopify refused the request: {0}")]
    Rejected(String),
    /// Shopify could not be reached, kept failing or kept throttling after every try.
    #[error("Shopify is unavailable: {0}")]
    Unavailable(String),
}

/// The bucket as Shopify last reported it, and when.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    maximum: f64,
    available: f64,
    restore_rate: f64,
    at: Instant,
}

impl Bucket {
    /// Points available now, if the bucket refilled at its rate since the report.
    fn available_now(&self) -> f64 {
        (self.available + self.at.elapsed().as_secs_f64() * self.restore_rate).min(self.maximum)
    }

    /// How long until `cost` points are there.
    fn wait_for(&self, cost: f64) -> Duration {
        let missing = cost.min(self.maximum) - self.available_now();
        if missing <= 0.0 || self.restore_rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing / self.restore_rate).min(MAX_WAIT)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Always,
    WhenNotRun,
}

/// What the client did, for the sync's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientStats {
    pub requests: u32,
    /// Waits the client chose before sending, to keep the bucket from running dry.
    pub paced: u32,
    /// Refusals: THROTTLED answers and 429s.
    pub throttled: u32,
    pub retried_errors: u32,
}

/// One shop's GraphQL Admin API. Clones share the bucket estimate and the figures.
#[derive(Clone)]
pub struct ShopifyClient {
    http: reqwest::Client,
    endpoint: String,
    token: Redacted,
    bucket: Arc<Mutex<Option<Bucket>>>,
    stats: Arc<Mutex<ClientStats>>,
}

#[derive(Deserialize)]
struct Answer<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Option<serde_json::Value>,
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    cost: Option<Cost>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    requested_query_cost: Option<f64>,
    throttle_status: ThrottleStatus,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThrottleStatus {
    maximum_available: f64,
    currently_available: f64,
    restore_rate: f64,
}

impl ShopifyClient {
    pub fn new(http: reqwest::Client, api_base: Option<&str>, shop: &ShopDomain, token: Redacted) -> Self {
        Self {
            http,
            endpoint: format!("{}/admin/api/{API_VERSION}/graphql.json", shop_base(api_base, shop)),
            token,
            bucket: Arc::default(),
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> ClientStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, change: impl FnOnce(&mut ClientStats)) {
        change(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn bucket(&self) -> Option<Bucket> {
        *self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, status: &ThrottleStatus) {
        *self.bucket.lock().unwrap_or_else(|p| p.into_inner()) = Some(Bucket {
            maximum: status.maximum_available,
            available: status.currently_available,
            restore_rate: status.restore_rate,
            at: Instant::now(),
        });
    }

    /// Runs one operation. `cost` is the query's requested cost as Shopify calculates it
    /// (first × nested first …), so the client can wait for the bucket before sending.
    pub async fn run<T: DeserializeOwned>(
        &self,
        operation: &str,
        query: &str,
        variables: serde_json::Value,
        cost: f64,
    ) -> Result<T, ShopifyError> {
        self.send(operation, query, variables, cost, Retry::Always).await
    }

    /// Runs a mutation whose effect a lost answer would hide (creating an order): retried only
    /// where Shopify said it did nothing (throttled, 429); after a timeout, a lost connection
    /// or a 5xx the caller finds out what happened before trying again.
    pub async fn run_once<T: DeserializeOwned>(
        &self,
        operation: &str,
        query: &str,
        variables: serde_json::Value,
        cost: f64,
    ) -> Result<T, ShopifyError> {
        self.send(operation, query, variables, cost, Retry::WhenNotRun).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        operation: &str,
        query: &str,
        variables: serde_json::Value,
        cost: f64,
        retry: Retry,
    ) -> Result<T, ShopifyError> {
        let body = serde_json::json!({ "query": query, "variables": variables, "operationName": operation });
        let mut last_failure = String::new();
        for attempt in 0..MAX_TRIES {
            if let Some(wait) = self.bucket().map(|b| b.wait_for(cost)).filter(|w| !w.is_zero()) {
                self.count(|s| s.paced += 1);
                tokio::time::sleep(wait).await;
            }
            self.count(|s| s.requests += 1);
            let sent = self
                .http
                .post(&self.endpoint)
                .header("X-Shopify-Access-Token", self.token.expose())
                .json(&body)
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(err) => {
                    last_failure = format!("{operation}: {}", crate::integrations::without_url(&err, "<shopify>"));
                    if retry == Retry::WhenNotRun {
                        return Err(ShopifyError::Unavailable(last_failure));
                    }
                    self.count(|s| s.retried_errors += 1);
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0);
            let text = response
                .text()
                .await
                .map_err(|e| ShopifyError::Unavailable(crate::integrations::without_url(&e, "<shopify>")))?;
            match status {
                200..=299 => {}
                401 | 403 => return Err(ShopifyError::Unauthorized),
                429 => {
                    self.count(|s| s.throttled += 1);
                    last_failure = format!("{operation}: HTTP 429");
                    // Clamped before converting: a huge value must not overflow a Duration.
                    let wait = retry_after.map_or(1.0, |s| s.min(MAX_WAIT.as_secs_f64()));
                    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                    continue;
                }
                500..=599 => {
                    last_failure = format!("{operation}: HTTP {status}");
                    if retry == Retry::WhenNotRun {
                        return Err(ShopifyError::Unavailable(last_failure));
                    }
                    self.count(|s| s.retried_errors += 1);
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                _ => return Err(ShopifyError::Rejected(format!("{operation}: HTTP {status}"))),
            }
            let answer: Answer<T> = serde_json::from_str(&text)
                .map_err(|e| ShopifyError::Unavailable(format!("{operation}: unexpected answer: {e}")))?;
            let cost_report = answer.extensions.and_then(|e| e.cost);
            if let Some(report) = &cost_report {
                self.remember(&report.throttle_status);
            }
            if let Some(errors) = answer.errors.filter(|e| !e.is_null()) {
                if is_throttled(&errors) {
                    self.count(|s| s.throttled += 1);
                    last_failure = format!("{operation}: throttled");
                    let requested = cost_report.and_then(|c| c.requested_query_cost).unwrap_or(cost);
                    let wait = self.bucket().map_or(Duration::from_secs(1), |b| b.wait_for(requested));
                    tokio::time::sleep(wait.max(Duration::from_millis(50))).await;
                    continue;
                }
                return Err(ShopifyError::Rejected(format!("{operation}: {}", error_messages(&errors))));
            }
            return answer
                .data
                .ok_or_else(|| ShopifyError::Unavailable(format!("{operation}: an answer without data")));
        }
        Err(ShopifyError::Unavailable(format!("after {MAX_TRIES} tries: {last_failure}")))
    }
}

fn is_throttled(errors: &serde_json::Value) -> bool {
    errors.as_array().is_some_and(|list| {
        list.iter().any(|e| e.pointer("/extensions/code").and_then(|c| c.as_str()) == Some("THROTTLED"))
    })
}

fn error_messages(errors: &serde_json::Value) -> String {
    match errors {
        serde_json::Value::Array(list) => list
            .iter()
            .map(|e| e.get("message").and_then(|m| m.as_str()).unwrap_or("error").to_owned())
            .collect::<Vec<_>>()
            .join("; "),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// 200 ms, 400 ms, … with up to 50% jitter, so workers retrying together do not move in step.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.min(5);
    Duration::from_millis(base + rand::rng().random_range(0..=base / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_waits_only_for_what_is_missing() {
        let bucket = Bucket { maximum: 1000.0, available: 100.0, restore_rate: 50.0, at: Instant::now() };
        assert_eq!(bucket.wait_for(50.0), Duration::ZERO);
        let wait = bucket.wait_for(300.0).as_secs_f64();
        assert!((3.9..=4.0).contains(&wait), "{wait}");
        // A query costlier than the bucket waits for a full bucket, not forever.
        assert!(bucket.wait_for(5000.0) <= MAX_WAIT);
    }

    #[test]
    fn throttled_answers_are_recognised() {
        let throttled = serde_json::json!([{ "message": "Throttled", "extensions": { "code": "THROTTLED" } }]);
        assert!(is_throttled(&throttled));
        assert!(!is_throttled(&serde_json::json!([{ "message": "Field 'x' doesn't exist" }])));
        assert_eq!(error_messages(&serde_json::json!("[API] Invalid API key")), "[API] Invalid API key");
    }
}
