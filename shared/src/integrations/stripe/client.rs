//! The Stripe API client over `reqwest`: form-encoded POSTs with the vendor's secret key, an
//! `Idempotency-Key` on every create (so a retry never charges or refunds twice), and retries
//! with backoff and jitter where Stripe says a retry is safe.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;

use crate::integrations::secrets::Redacted;

/// Lambda's API timeout is 29 s: three tries of at most 8 s each fit in it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
const MAX_TRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe refused the request (a 4xx other than 429): retrying the same request cannot help.
    #[error("Stripe refused the request ({status}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Rejected { status: u16, code: Option<String>, message: String },
    /// The key was refused: the vendor's Stripe settings need attention.
    #[error("Stripe refused the vendor's API key")]
    Unauthorized,
    /// Stripe could not be reached or kept failing (5xx, 429, timeouts) after every try.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
}

/// A PaymentIntent, as far as Bestow reads it.
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    /// Handed to the buyer's browser once; never stored or logged.
    pub client_secret: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub payment_intent: Option<String>,
}

pub struct NewPaymentIntent<'a> {
    pub amount_minor: i64,
    /// ISO 4217; Stripe wants it in lower case.
    pub currency: &'a str,
    pub description: &'a str,
    pub metadata: &'a BTreeMap<String, String>,
}

pub struct NewRefund<'a> {
    pub payment_intent: &'a str,
    pub amount_minor: i64,
    pub metadata: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
}

/// One vendor's Stripe account. Cheap to build per request: the connection pool is the
/// shared `reqwest::Client`.
pub struct StripeClient {
    http: reqwest::Client,
    base_url: String,
    secret_key: Redacted,
}

impl StripeClient {
    pub fn new(http: reqwest::Client, base_url: &str, secret_key: Redacted) -> Self {
        Self { http, base_url: base_url.trim_end_matches('/').to_owned(), secret_key }
    }

    pub async fn create_payment_intent(
        &self,
        intent: &NewPaymentIntent<'_>,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let mut form = vec![
            ("amount".to_owned(), intent.amount_minor.to_string()),
            ("currency".to_owned(), intent.currency.to_ascii_lowercase()),
            ("description".to_owned(), intent.description.to_owned()),
            ("automatic_payment_methods[enabled]".to_owned(), "true".to_owned()),
        ];
        form.extend(metadata_fields(intent.metadata));
        self.post("/v1/payment_intents", &form, idempotency_key).await
    }

    pub async fn create_refund(&self, refund: &NewRefund<'_>, idempotency_key: &str) -> Result<Refund, StripeError> {
        let mut form = vec![
            ("payment_intent".to_owned(), refund.payment_intent.to_owned()),
            ("amount".to_owned(), refund.amount_minor.to_string()),
        ];
        form.extend(metadata_fields(refund.metadata));
        self.post("/v1/refunds", &form, idempotency_key).await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, StripeError> {
        let url = format!("{}{path}", self.base_url);
        let mut last_failure = String::new();
        for attempt in 0..MAX_TRIES {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let sent = self
                .http
                .post(&url)
                .bearer_auth(self.secret_key.expose())
                .header("Idempotency-Key", idempotency_key)
                .form(form)
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                // The same idempotency key makes a retry after a lost answer safe.
                Err(err) => {
                    last_failure = format!("{path}: {}", without_url(&err));
                    continue;
                }
            };
            let status = response.status().as_u16();
            // Stripe's own verdict on retrying wins over the status code.
            let should_retry =
                response.headers().get("stripe-should-retry").and_then(|v| v.to_str().ok()).map(|v| v == "true");
            let body = response.bytes().await.map_err(|e| StripeError::Unavailable(without_url(&e)))?;
            if (200..300).contains(&status) {
                return serde_json::from_slice(&body)
                    .map_err(|e| StripeError::Unavailable(format!("{path}: unexpected answer: {e}")));
            }
            let detail = serde_json::from_slice::<ErrorBody>(&body).ok().map(|b| b.error);
            let message = detail.as_ref().and_then(|d| d.message.clone()).unwrap_or_else(|| format!("HTTP {status}"));
            if should_retry.unwrap_or(status == 429 || status == 409 || status >= 500) {
                last_failure = format!("{path}: HTTP {status}: {message}");
                continue;
            }
            if status == 401 {
                return Err(StripeError::Unauthorized);
            }
            return Err(StripeError::Rejected { status, code: detail.and_then(|d| d.code), message });
        }
        Err(StripeError::Unavailable(format!("after {MAX_TRIES} tries: {last_failure}")))
    }
}

fn metadata_fields(metadata: &BTreeMap<String, String>) -> impl Iterator<Item = (String, String)> + '_ {
    metadata.iter().map(|(k, v)| (format!("metadata[{k}]"), v.clone()))
}

/// 250 ms, 500 ms, … with up to 50% jitter, so retrying clients do not move in step.
fn backoff(attempt: u32) -> Duration {
    let base = 250u64 << attempt.saturating_sub(1).min(4);
    Duration::from_millis(base + rand::rng().random_range(0..=base / 2))
}

/// A reqwest error's text without the URL (which is harmless here, but a habit worth keeping).
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "<stripe>");
    }
    text
}
