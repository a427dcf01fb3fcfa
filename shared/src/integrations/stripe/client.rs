//! The Stripe API client over `reqwest`: form-encoded requests with an account's secret key (a
//! vendor's, or the platform's own for plans), an `Idempotency-Key` on every create (so a retry
//! never charges or refunds twice), and retries with backoff and jitter where Stripe says a
//! retry is safe.

use crate::integrations::{backoff, without_url};
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::integrations::secrets::Redacted;

/// Lambda's API timeout is 29 s: three tries of at most 8 s each fit in it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
const MAX_TRIES: u32 = 3;
/// The API version every request asks for, whatever the account's default: the shapes read
/// here are this version's (e.g. a subscription's `current_period_end` on the subscription).
const API_VERSION: &str = "2024-06-20";

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

/// A customer of the platform's own account (a vendor paying for its plan).
#[derive(Clone, Debug, Deserialize)]
pub struct Customer {
    pub id: String,
}

/// A Checkout Session; `url` is where the payer goes.
#[derive(Clone, Debug, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    pub url: Option<String>,
    pub status: Option<String>,
    pub subscription: Option<String>,
}

/// A subscription as far as Bestow reads it (API version 2024-06-20: the period is on the
/// subscription itself).
#[derive(Clone, Debug, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    /// `incomplete`, `incomplete_expired`, `trialing`, `active`, `past_due`, `unpaid`,
    /// `canceled` or `paused`.
    pub status: String,
    pub created: i64,
    pub current_period_end: Option<i64>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    pub items: SubscriptionItems,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SubscriptionItems {
    pub data: Vec<SubscriptionItem>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SubscriptionItem {
    pub price: Price,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Price {
    pub id: String,
}

impl Subscription {
    pub fn price_id(&self) -> Option<&str> {
        self.items.data.first().map(|i| i.price.id.as_str())
    }
}

/// A subscription-mode Checkout Session for one price.
pub struct NewSubscriptionCheckout<'a> {
    pub customer: &'a str,
    pub price: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    pub client_reference_id: &'a str,
    pub metadata: &'a BTreeMap<String, String>,
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

    pub async fn create_customer(
        &self,
        name: &str,
        email: &str,
        metadata: &BTreeMap<String, String>,
        idempotency_key: &str,
    ) -> Result<Customer, StripeError> {
        let mut form = vec![("name".to_owned(), name.to_owned()), ("email".to_owned(), email.to_owned())];
        form.extend(metadata_fields(metadata));
        self.post("/v1/customers", &form, idempotency_key).await
    }

    pub async fn create_subscription_checkout(
        &self,
        checkout: &NewSubscriptionCheckout<'_>,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, StripeError> {
        let mut form = vec![
            ("mode".to_owned(), "subscription".to_owned()),
            ("customer".to_owned(), checkout.customer.to_owned()),
            ("line_items[0][price]".to_owned(), checkout.price.to_owned()),
            ("line_items[0][quantity]".to_owned(), "1".to_owned()),
            ("success_url".to_owned(), checkout.success_url.to_owned()),
            ("cancel_url".to_owned(), checkout.cancel_url.to_owned()),
            ("client_reference_id".to_owned(), checkout.client_reference_id.to_owned()),
        ];
        form.extend(metadata_fields(checkout.metadata));
        // The subscription carries the vendor too, so its own events name it.
        form.extend(checkout.metadata.iter().map(|(k, v)| (format!("subscription_data[metadata][{k}]"), v.clone())));
        self.post("/v1/checkout/sessions", &form, idempotency_key).await
    }

    /// The subscription as Stripe has it now: events may arrive late or out of order, so
    /// their handler reads the current state rather than trusting the event's copy.
    pub async fn subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        self.send(reqwest::Method::GET, &format!("/v1/subscriptions/{id}"), &[], None).await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, StripeError> {
        self.send(reqwest::Method::POST, path, form, Some(idempotency_key)).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let url = format!("{}{path}", self.base_url);
        let mut last_failure = String::new();
        for attempt in 0..MAX_TRIES {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.secret_key.expose())
                .header("Stripe-Version", API_VERSION)
                .timeout(REQUEST_TIMEOUT);
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            if method != reqwest::Method::GET {
                request = request.form(form);
            }
            let sent = request.send().await;
            let response = match sent {
                Ok(response) => response,
                // The same idempotency key makes a retry after a lost answer safe.
                Err(err) => {
                    last_failure = format!("{path}: {}", without_url(&err, "<stripe>"));
                    continue;
                }
            };
            let status = response.status().as_u16();
            // Stripe's own verdict on retrying wins over the status code.
            let should_retry =
                response.headers().get("stripe-should-retry").and_then(|v| v.to_str().ok()).map(|v| v == "true");
            let body = response.bytes().await.map_err(|e| StripeError::Unavailable(without_url(&e, "<stripe>")))?;
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
