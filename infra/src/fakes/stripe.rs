//! A local HTTP fake of the Stripe API (<https://docs.stripe.com/api>): PaymentIntents and
//! Refunds over form-encoded requests, with Stripe's JSON shapes, errors, API-key check and
//! idempotency keys. A PaymentIntent is paid as Stripe.js pays it, by confirming it with one of
//! Stripe's test payment methods (`pm_card_visa`, `pm_card_chargeDeclined`, …); what Stripe does
//! on its own (a refund settling) the test triggers itself. Each helper returns the Event that
//! Stripe's webhook would carry; after [`StripeFake::deliver_webhooks`], the fake also POSTs
//! its events to the vendor's endpoint, signed, as Stripe does.
//!
//! Stripe Billing, for plans billed on the platform's own account: Customers, Checkout Sessions
//! in `subscription` mode, Subscriptions and their Invoices, on Prices the test seeds
//! ([`StripeFake::add_price`]). These objects belong to the account (secret key) that created
//! them; what Stripe does on its own (a checkout paid, a period renewed, a retry) the test plays
//! with [`StripeFake::complete_checkout`], [`StripeFake::renew_subscription`], … and their events
//! go to the platform's endpoint after [`StripeFake::deliver_platform_webhooks`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

const API_VERSION: &str = "2024-06-20";

/// The `User-Agent` of Stripe's webhook requests.
const WEBHOOK_USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";
/// The waits before each retry of a failed delivery (Stripe's own back-off, in seconds
/// rather than hours).
const WEBHOOK_RETRY_WAITS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)];

/// A running fake: serves on a loopback port until dropped.
pub struct StripeFake {
    base_url: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<std::io::Result<()>>,
    /// The runtime the fake was started on, which delivers the webhooks.
    runtime: Handle,
}

/// One webhook delivery attempt (a failed delivery is retried: one record per attempt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    pub url: String,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why there was no answer (connection refused, timeout, …).
    pub error: Option<String>,
}

/// A day, in seconds.
const DAY: i64 = 86_400;
/// How long a Checkout Session stays open (Stripe's default).
const CHECKOUT_LIFETIME: i64 = DAY;
/// When Stripe retries a failed invoice payment (its Smart Retries vary; one fixed delay here).
const PAYMENT_RETRY_DELAY: i64 = 3 * DAY;
/// The statuses of a Subscription.
const SUBSCRIPTION_STATUSES: [&str; 7] =
    ["incomplete", "incomplete_expired", "trialing", "active", "past_due", "unpaid", "canceled"];

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The API key of the `Authorization` header (Bearer, or Basic with the key as user).
    pub secret_key: Option<String>,
    /// The form body (the query string for a GET; for a DELETE, the query string then the
    /// body), decoded, in order.
    pub form: Vec<(String, String)>,
}

/// A response stored under an idempotency key, with what it answered.
struct Saved {
    method: String,
    path: String,
    form: Vec<(String, String)>,
    status: u16,
    body: String,
}

#[derive(Default)]
struct State {
    /// The fake's root, for the Checkout and hosted invoice pages.
    base_url: String,
    requests: Vec<RecordedRequest>,
    intents: Vec<Value>,
    charges: Vec<Value>,
    refunds: Vec<Value>,
    failures: VecDeque<u16>,
    refund_status: String,
    /// Keyed by (secret key, idempotency key).
    idempotent: HashMap<(String, String), Saved>,
    /// Where events go, once `deliver_webhooks` was called.
    webhooks: Option<Webhooks>,
    /// Events created under the lock, sent once it is released.
    outbox: Vec<Outgoing>,
    deliveries: Vec<Delivery>,
    /// The `created` of the last event emitted: each event gets a later second than the one
    /// before, so their order shows even within one second.
    last_event: i64,
    /// Seeded by the test, seen by every account.
    products: Vec<Value>,
    prices: Vec<Value>,
    /// Billing object id → the secret key of the account that owns it.
    owners: HashMap<String, String>,
    customers: Vec<Value>,
    sessions: Vec<Session>,
    subscriptions: Vec<Value>,
    invoices: Vec<Value>,
    /// Platform key → where the events of that account's objects go, once
    /// `deliver_platform_webhooks` was called.
    platform_webhooks: HashMap<String, Endpoint>,
}

/// A Checkout Session, with what it subscribes to (which Stripe keeps in its line items).
struct Session {
    object: Value,
    price: String,
    quantity: i64,
    /// `subscription_data[metadata]`: the metadata of the Subscription it creates.
    subscription_metadata: Value,
}

/// A webhook endpoint and its signing secret.
struct Endpoint {
    url: String,
    secret: String,
}

struct Webhooks {
    endpoint_base: String,
    /// Vendor id → signing secret (`whsec_…`).
    secrets: BTreeMap<String, String>,
}

/// An event on its way to a vendor's endpoint.
struct Outgoing {
    event: Value,
    url: String,
    secret: String,
}

/// A Stripe error; `saved` is false for parameter validation, which Stripe does not store
/// under an idempotency key.
#[derive(Debug)]
struct ApiError {
    status: u16,
    kind: &'static str,
    code: Option<&'static str>,
    param: Option<String>,
    message: String,
    saved: bool,
    /// More fields of the error object (`decline_code`, `payment_intent`, …).
    extra: Map<String, Value>,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: String) -> Self {
        Self { status, kind, code: None, param: None, message, saved: true, extra: Map::new() }
    }

    /// `payment_intent_unexpected_state`, with the PaymentIntent as it stands.
    fn unexpected_state(intent: &Value, message: &str) -> Self {
        Self {
            code: Some("payment_intent_unexpected_state"),
            extra: Map::from_iter([("payment_intent".to_owned(), intent.clone())]),
            ..Self::new(400, "invalid_request_error", message.to_owned())
        }
    }

    fn invalid(param: &str, code: Option<&'static str>, message: String) -> Self {
        Self { code, param: Some(param.to_owned()), saved: false, ..Self::new(400, "invalid_request_error", message) }
    }

    fn missing(param: &str) -> Self {
        Self::invalid(param, Some("parameter_missing"), format!("Missing required param: {param}."))
    }

    fn no_such(object: &str, param: &str, id: &str) -> Self {
        let message = format!("No such {object}: '{id}'");
        Self {
            code: Some("resource_missing"),
            param: Some(param.to_owned()),
            ..Self::new(404, "invalid_request_error", message)
        }
    }

    fn body(&self) -> String {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        if let Some(code) = self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-"))),
            );
        }
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        error.extend(self.extra.clone());
        pretty(&json!({ "error": error }))
    }
}

impl StripeFake {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start() -> std::io::Result<StripeFake> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            base_url: base_url.clone(),
            refund_status: "succeeded".to_owned(),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let handler = move |req| handle(Arc::clone(&shared), req);
        let server = tokio::spawn(crate::loopback::serve(listener, Arc::new(handler)));
        Ok(StripeFake { base_url, state, server, runtime: Handle::current() })
    }

    /// Sends every event the fake creates from now on to `<endpoint_base><vendor id>` (the vendor
    /// taken from the object's `metadata.bestow_vendor`), signed with that vendor's secret from
    /// `secrets` (vendor id → `whsec_…`); vendors without a secret get nothing.
    ///
    /// Those events are `payment_intent.succeeded` / `payment_intent.payment_failed` (confirm,
    /// `succeed_payment`, `fail_payment`), `charge.refunded` (a refund created succeeded) and
    /// `refund.updated` (`update_refund`). Each one is POSTed on its own task once the request
    /// that created it is answered, with Stripe's headers and a `Stripe-Signature` made at
    /// sending time; a connection error or a non-2xx answer is retried after 1, 2 and 4 s.
    /// Every attempt is recorded in [`StripeFake::deliveries`].
    pub fn deliver_webhooks(&self, endpoint_base: &str, secrets: BTreeMap<String, String>) {
        self.lock().webhooks = Some(Webhooks { endpoint_base: endpoint_base.to_owned(), secrets });
    }

    /// Every webhook delivery attempt so far, in the order they ended.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// The fake's root, e.g. `http://127.0.0.1:PORT` (no trailing slash): use it as the API base.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Every request received, in order (including failed and injected ones).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// A PaymentIntent as it stands now.
    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        self.lock().intents.iter().find(|i| i["id"] == id).cloned()
    }

    /// Every PaymentIntent, in creation order.
    pub fn payment_intents(&self) -> Vec<Value> {
        self.lock().intents.clone()
    }

    /// Every Refund, in creation order.
    pub fn refunds(&self) -> Vec<Value> {
        self.lock().refunds.clone()
    }

    /// The next `n` requests get this HTTP status with a Stripe error body (500 → api_error;
    /// 429 → rate_limit with error code "rate_limit"), before anything is applied.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().failures.extend(std::iter::repeat_n(status, n));
    }

    /// New refunds are created with this status ("succeeded" by default; tests set "pending").
    pub fn set_refund_status(&self, status: &str) {
        self.lock().refund_status = status.to_owned();
    }

    /// Marks the PaymentIntent succeeded (creates its charge `latest_charge`, amount_received =
    /// amount) and returns the `payment_intent.succeeded` Event JSON. Already succeeded: the
    /// Event again, unchanged (and not delivered again).
    pub fn succeed_payment(&self, pi_id: &str) -> Option<Value> {
        self.apply(|state| state.succeed(pi_id))
    }

    /// Marks it failed (last_payment_error with a card_declined decline, and a failed charge)
    /// and returns `payment_intent.payment_failed`. None if unknown or already succeeded.
    pub fn fail_payment(&self, pi_id: &str) -> Option<Value> {
        self.apply(|state| state.decline(pi_id))
    }

    /// Sets a refund's status (e.g. pending → succeeded or failed) and returns the
    /// `refund.updated` Event JSON.
    pub fn update_refund(&self, refund_id: &str, status: &str) -> Option<Value> {
        self.apply(|state| {
            let refund = state.refunds.iter_mut().find(|r| r["id"] == refund_id)?;
            refund["status"] = json!(status);
            if status == "failed" {
                refund["failure_reason"] = json!("unknown");
            }
            let refund = refund.clone();
            Some(state.emit("refund.updated", refund))
        })
    }

    /// The `charge.refunded` Event for a PaymentIntent's charge, as it stands now
    /// (amount_refunded = sum of succeeded refunds, refunded = fully refunded). Not delivered:
    /// the fake delivers it itself when a refund is created succeeded.
    pub fn charge_refunded_event(&self, pi_id: &str) -> Option<Value> {
        let charge = self.lock().refund_charge(pi_id)?;
        Some(event("charge.refunded", charge))
    }

    /// A realistic Event envelope around any object.
    pub fn event(&self, event_type: &str, object: Value) -> Value {
        event(event_type, object)
    }

    /// Sends every event the fake creates from now on about an object of the account whose
    /// secret key is `platform_key` (its Customers, Checkout Sessions, Subscriptions and
    /// Invoices: `customer.subscription.*`, `invoice.*`, `checkout.session.*`) to exactly `url`,
    /// signed with `secret` (`whsec_…`), as [`StripeFake::deliver_webhooks`] delivers (same
    /// headers, retries and [`StripeFake::deliveries`] records). Those events never go to a
    /// vendor's endpoint, whatever their metadata. Calling it again for the same key replaces
    /// the endpoint.
    pub fn deliver_platform_webhooks(&self, url: &str, secret: &str, platform_key: &str) {
        let endpoint = Endpoint { url: url.to_owned(), secret: secret.to_owned() };
        self.lock().platform_webhooks.insert(platform_key.to_owned(), endpoint);
    }

    /// Seeds a recurring Price (`interval`: `day`, `week`, `month` or `year`; a period lasts 1,
    /// 7, 30 or 365 days) of a Product named `product_name` (one Product per name), seen by
    /// every account. A Price of the same id is replaced.
    ///
    /// # Panics
    /// On any other interval.
    pub fn add_price(&self, id: &str, unit_amount: i64, currency: &str, interval: &str, product_name: &str) {
        assert!(
            ["day", "week", "month", "year"].contains(&interval),
            "a Price recurs every day, week, month or year, not every {interval:?}"
        );
        let mut state = self.lock();
        let existing = state.products.iter().find(|p| p["name"] == product_name);
        let product = match existing {
            Some(product) => product["id"].clone(),
            None => {
                let product = json!({
                    "id": format!("prod_{}", random_chars(14)),
                    "object": "product",
                    "active": true,
                    "created": now(),
                    "default_price": id,
                    "description": null,
                    "livemode": false,
                    "metadata": {},
                    "name": product_name,
                    "type": "service",
                    "updated": now(),
                });
                state.products.push(product);
                state.products.last().map(|p| p["id"].clone()).unwrap_or_default()
            }
        };
        let price = json!({
            "id": id,
            "object": "price",
            "active": true,
            "billing_scheme": "per_unit",
            "created": now(),
            "currency": currency.to_ascii_lowercase(),
            "custom_unit_amount": null,
            "livemode": false,
            "lookup_key": null,
            "metadata": {},
            "nickname": null,
            "product": product,
            "recurring": {
                "aggregate_usage": null,
                "interval": interval,
                "interval_count": 1,
                "meter": null,
                "trial_period_days": null,
                "usage_type": "licensed",
            },
            "tax_behavior": "unspecified",
            "tiers_mode": null,
            "transform_quantity": null,
            "type": "recurring",
            "unit_amount": unit_amount,
            "unit_amount_decimal": unit_amount.to_string(),
        });
        state.prices.retain(|p| p["id"] != id);
        state.prices.push(price);
    }

    /// The customer paid a Checkout Session: creates its Subscription (active, its first period
    /// from now) and the Subscription's first Invoice (paid, `billing_reason`
    /// `subscription_create`), and completes the Session (`status` complete, `payment_status`
    /// paid, `subscription`, `invoice`). Returns the Events, in order:
    /// `customer.subscription.created`, `invoice.created` (draft), `invoice.finalized` (open),
    /// `invoice.paid`, `invoice.payment_succeeded`, `checkout.session.completed`.
    /// None if unknown or no longer open.
    pub fn complete_checkout(&self, cs_id: &str) -> Option<Vec<Value>> {
        self.apply(|state| state.complete_checkout(cs_id))
    }

    /// A Session's customer left without paying and the Session expired (`status` expired,
    /// `url` null): returns `checkout.session.expired`. None if unknown or no longer open.
    pub fn expire_checkout(&self, cs_id: &str) -> Option<Vec<Value>> {
        self.apply(|state| {
            let session = &mut state.sessions.iter_mut().find(|s| s.object["id"] == cs_id)?.object;
            if session["status"] != "open" {
                return None;
            }
            session["status"] = json!("expired");
            session["url"] = Value::Null;
            let session = session.clone();
            Some(vec![state.emit("checkout.session.expired", session)])
        })
    }

    /// A Subscription's period ends. If it was set to cancel at period end, it ends: `status`
    /// canceled, `ended_at` the period's end; returns `customer.subscription.deleted`.
    /// Otherwise Stripe bills the next period (an Invoice with `billing_reason`
    /// `subscription_cycle`, whose `period_start`/`period_end` look back on the period that
    /// ended, as Stripe's do, while its line's `period` is the new one) and the Subscription
    /// moves on to the next period (`current_period_start`/`_end`, `latest_invoice`):
    /// - `pays`: the Invoice is paid and the Subscription active. Events: `invoice.created`,
    ///   `invoice.finalized`, `invoice.paid`, `invoice.payment_succeeded`,
    ///   `customer.subscription.updated`;
    /// - not: the Invoice stays open (`attempt_count` 1, `next_payment_attempt` in 3 days) and
    ///   the Subscription is past_due (unpaid stays unpaid). Events: `invoice.created`,
    ///   `invoice.finalized`, `invoice.payment_failed`, `customer.subscription.updated`.
    ///
    /// `customer.subscription.updated` carries `data.previous_attributes`. None if unknown or
    /// not active, trialing, past_due or unpaid.
    pub fn renew_subscription(&self, sub_id: &str, pays: bool) -> Option<Vec<Value>> {
        self.apply(|state| state.renew(sub_id, pays))
    }

    /// A retry of an open Invoice succeeds: the Invoice is paid and, when it is its
    /// Subscription's latest, the Subscription (past_due, unpaid or incomplete) active again.
    /// Events: `invoice.paid`, `invoice.payment_succeeded`, then `customer.subscription.updated`
    /// when the Subscription's status changed. None if unknown or not open.
    pub fn pay_open_invoice(&self, invoice_id: &str) -> Option<Vec<Value>> {
        self.apply(|state| state.pay_open_invoice(invoice_id))
    }

    /// Stripe changes a Subscription's status on its own (e.g. `unpaid` once retries are
    /// exhausted): returns `customer.subscription.updated` (with `previous_attributes`), or for
    /// `canceled` `customer.subscription.deleted` (`canceled_at`, `ended_at` now,
    /// `cancellation_details.reason` payment_failed). An unchanged status: no event. None if
    /// unknown or already ended (canceled or incomplete_expired).
    ///
    /// # Panics
    /// On a status that is not one of a Subscription's.
    pub fn set_subscription_status(&self, sub_id: &str, status: &str) -> Option<Vec<Value>> {
        assert!(SUBSCRIPTION_STATUSES.contains(&status), "not a Subscription status: {status:?}");
        self.apply(|state| state.set_subscription_status(sub_id, status))
    }

    /// A Subscription as it stands now.
    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.lock().subscriptions.iter().find(|s| s["id"] == id).cloned()
    }

    /// An Invoice as it stands now.
    pub fn invoice(&self, id: &str) -> Option<Value> {
        self.lock().invoices.iter().find(|i| i["id"] == id).cloned()
    }

    /// A Subscription's Invoices, in creation order.
    pub fn invoices_of(&self, sub_id: &str) -> Vec<Value> {
        self.lock().invoices.iter().filter(|i| i["subscription"] == sub_id).cloned().collect()
    }

    /// A Checkout Session as it stands now.
    pub fn checkout_session(&self, id: &str) -> Option<Value> {
        self.lock().sessions.iter().find(|s| s.object["id"] == id).map(|s| s.object.clone())
    }

    /// Every Customer of every account, in creation order.
    pub fn customers(&self) -> Vec<Value> {
        self.lock().customers.clone()
    }

    /// Runs `change` on the state, then sends the events it created, once the lock is released.
    fn apply<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let (result, outbox) = {
            let mut state = self.lock();
            let result = change(&mut state);
            (result, std::mem::take(&mut state.outbox))
        };
        send(&self.runtime, &self.state, outbox);
        result
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for StripeFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(state: Arc<Mutex<State>>, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let query = parse_form(parts.uri.query().unwrap_or(""));
    let form = match parts.method {
        http::Method::GET => query,
        http::Method::DELETE => query.into_iter().chain(parse_form(&String::from_utf8_lossy(&body))).collect(),
        _ => parse_form(&String::from_utf8_lossy(&body)),
    };
    // The pages a customer's browser opens (Checkout, hosted invoice): not API requests.
    let page = (parts.method == http::Method::GET).then(|| lock(&state).page(parts.uri.path())).flatten();
    if let Some((status, html)) = page {
        let mut response = http::Response::new(Full::new(Bytes::from(html)));
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NOT_FOUND);
        response.headers_mut().insert("content-type", http::HeaderValue::from_static("text/html; charset=utf-8"));
        return response;
    }
    let request = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        idempotency_key: header("idempotency-key"),
        secret_key: header("authorization").as_deref().and_then(api_key),
        form,
    };
    let (status, body, replayed, outbox) = {
        let mut state = lock(&state);
        let (status, body, replayed) = state.serve(request);
        (status, body, replayed, std::mem::take(&mut state.outbox))
    };
    send(&Handle::current(), &state, outbox);
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", http::HeaderValue::from_static("application/json"));
    headers.insert("stripe-version", http::HeaderValue::from_static(API_VERSION));
    if let Ok(id) = http::HeaderValue::from_str(&stripe_id("req_")) {
        headers.insert("request-id", id);
    }
    if replayed {
        headers.insert("idempotent-replayed", http::HeaderValue::from_static("true"));
    }
    response
}

impl State {
    /// Answers one request: (status, body, whether it is an idempotent replay).
    fn serve(&mut self, req: RecordedRequest) -> (u16, String, bool) {
        self.requests.push(req.clone());
        if let Some(status) = self.failures.pop_front() {
            return (status, injected(status).body(), false);
        }
        let key = match req.secret_key.as_deref() {
            Some(key) if key.starts_with("sk_test_") || key.starts_with("rk_test_") => key.to_owned(),
            Some(key) => {
                let message = format!("Invalid API Key provided: {}", redact(key));
                return (401, ApiError::new(401, "invalid_request_error", message).body(), false);
            }
            None => {
                let message = "You did not provide an API key. You need to provide your API key in the Authorization \
                    header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').";
                return (401, ApiError::new(401, "invalid_request_error", message.to_owned()).body(), false);
            }
        };
        let scope = req.idempotency_key.clone().filter(|_| req.method == "POST").map(|k| (key.clone(), k));
        if let Some(scope) = &scope
            && let Some(saved) = self.idempotent.get(scope)
        {
            if (&saved.method, &saved.path, &saved.form) == (&req.method, &req.path, &req.form) {
                return (saved.status, saved.body.clone(), true);
            }
            let message = format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                 Try using a key other than '{}' if you meant to execute a different request.",
                scope.1
            );
            return (400, ApiError::new(400, "idempotency_error", message).body(), false);
        }
        let (status, body, saved) = match self.route(&req, &key) {
            Ok(object) => (200, pretty(&object), true),
            Err(error) => (error.status, error.body(), error.saved),
        };
        if let Some(scope) = scope
            && saved
        {
            let RecordedRequest { method, path, form, .. } = req;
            self.idempotent.insert(scope, Saved { method, path, form, status, body: body.clone() });
        }
        (status, body, false)
    }

    fn route(&mut self, req: &RecordedRequest, key: &str) -> Result<Value, ApiError> {
        let segments: Vec<&str> = req.path.trim_end_matches('/').split('/').collect();
        match (req.method.as_str(), segments.as_slice()) {
            ("POST", ["", "v1", "payment_intents"]) => self.create_intent(&req.form),
            ("GET", ["", "v1", "payment_intents", id]) => self
                .intents
                .iter()
                .find(|i| i["id"] == *id)
                .cloned()
                .ok_or_else(|| ApiError::no_such("payment_intent", "intent", id)),
            ("POST", ["", "v1", "payment_intents", id, "confirm"]) => self.confirm_intent(id, &req.form),
            ("POST", ["", "v1", "refunds"]) => self.create_refund(&req.form),
            ("GET", ["", "v1", "products", id]) => {
                let product = self.products.iter().find(|p| p["id"] == *id);
                product.cloned().ok_or_else(|| ApiError::no_such("product", "id", id))
            }
            ("GET", ["", "v1", "prices", id]) => {
                let price = self.prices.iter().find(|p| p["id"] == *id);
                price.cloned().ok_or_else(|| ApiError::no_such("price", "price", id))
            }
            ("POST", ["", "v1", "customers"]) => self.create_customer(key, &req.form),
            ("GET", ["", "v1", "customers", id]) => owned(&self.customers, &self.owners, key, id)
                .cloned()
                .ok_or_else(|| ApiError::no_such("customer", "id", id)),
            ("POST", ["", "v1", "checkout", "sessions"]) => self.create_session(key, &req.form),
            ("GET", ["", "v1", "checkout", "sessions", id]) => {
                let session = self.sessions.iter().find(|s| s.object["id"] == *id && owns(&self.owners, key, id));
                session.map(|s| s.object.clone()).ok_or_else(|| ApiError::no_such("checkout.session", "session", id))
            }
            ("GET", ["", "v1", "subscriptions", id]) => owned(&self.subscriptions, &self.owners, key, id)
                .cloned()
                .ok_or_else(|| ApiError::no_such("subscription", "id", id)),
            ("POST", ["", "v1", "subscriptions", id]) => self.update_subscription(key, id, &req.form),
            ("DELETE", ["", "v1", "subscriptions", id]) => self.cancel_subscription(key, id, &req.form),
            ("GET", ["", "v1", "invoices", id]) => owned(&self.invoices, &self.owners, key, id)
                .cloned()
                .ok_or_else(|| ApiError::no_such("invoice", "invoice", id)),
            _ => Err(ApiError::new(
                404,
                "invalid_request_error",
                format!("Unrecognized request URL ({}: {}). Please see https://stripe.com/docs.", req.method, req.path),
            )),
        }
    }

    fn create_intent(&mut self, form: &[(String, String)]) -> Result<Value, ApiError> {
        check_params(
            form,
            &["amount", "currency", "description", "receipt_email", "automatic_payment_methods[enabled]"],
        )?;
        let amount = amount_param(form, "amount")?.ok_or_else(|| ApiError::missing("amount"))?;
        let currency = param(form, "currency").ok_or_else(|| ApiError::missing("currency"))?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ApiError::invalid("currency", None, format!("Invalid currency: {currency}.")));
        }
        let automatic = bool_param(form, "automatic_payment_methods[enabled]")?;
        let automatic = automatic.map_or(Value::Null, |enabled| json!({ "enabled": enabled }));
        let id = stripe_id("pi_3");
        let intent = json!({
            "id": id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": automatic,
            "canceled_at": null,
            "cancellation_reason": null,
            "capture_method": "automatic",
            "client_secret": format!("{id}_secret_{}", random_chars(25)),
            "confirmation_method": "automatic",
            "created": now(),
            "currency": currency.to_ascii_lowercase(),
            "customer": null,
            "description": param(form, "description"),
            "last_payment_error": null,
            "latest_charge": null,
            "livemode": false,
            "metadata": metadata(form),
            "next_action": null,
            "payment_method": null,
            "payment_method_types": ["card"],
            "receipt_email": param(form, "receipt_email"),
            "status": "requires_payment_method",
        });
        self.intents.push(intent.clone());
        Ok(intent)
    }

    /// `POST /v1/payment_intents/{id}/confirm` with one of Stripe's test payment methods
    /// (<https://docs.stripe.com/testing#cards>): `pm_card_*` succeeds, except the declining
    /// `pm_card_chargeDeclined*` / `pm_card_visa_chargeDeclined`, all answered as a generic
    /// decline (402 `card_error`).
    fn confirm_intent(&mut self, id: &str, form: &[(String, String)]) -> Result<Value, ApiError> {
        // Confirm takes no metadata, unlike the creating calls.
        if let Some((k, _)) = form.iter().find(|(k, _)| k.starts_with("metadata[")) {
            return Err(ApiError::invalid(k, Some("parameter_unknown"), format!("Received unknown parameter: {k}")));
        }
        check_params(form, &["payment_method", "return_url"])?;
        let intent = self.intents.iter().find(|i| i["id"] == id);
        let intent = intent.ok_or_else(|| ApiError::no_such("payment_intent", "intent", id))?;
        if intent["status"] == "succeeded" {
            let message = "You cannot confirm this PaymentIntent because it has already succeeded after being \
                previously confirmed.";
            return Err(ApiError::unexpected_state(intent, message));
        }
        let Some(payment_method) = param(form, "payment_method") else {
            let message = "You cannot confirm this PaymentIntent because it's missing a payment method. You can \
                either update the PaymentIntent with a payment method and then confirm it again, or confirm it \
                again directly with a payment method.";
            return Err(ApiError::unexpected_state(intent, message));
        };
        let Some(card) = payment_method.strip_prefix("pm_card_") else {
            let missing = ApiError::no_such("PaymentMethod", "payment_method", payment_method);
            return Err(ApiError { status: 400, ..missing });
        };
        let unknown = || ApiError::no_such("payment_intent", "intent", id);
        if !card.starts_with("chargeDeclined") && !card.ends_with("_chargeDeclined") {
            return self.succeed(id).map(|event| event["data"]["object"].clone()).ok_or_else(unknown);
        }
        // Stripe's card_error: the intent's last_payment_error, with the intent itself.
        let event = self.decline(id).ok_or_else(unknown)?;
        let intent = &event["data"]["object"];
        let mut extra = intent["last_payment_error"].as_object().cloned().unwrap_or_default();
        let message = extra.remove("message").and_then(|m| m.as_str().map(str::to_owned)).unwrap_or_default();
        for known in ["code", "doc_url", "type"] {
            extra.remove(known);
        }
        extra.insert("payment_intent".to_owned(), intent.clone());
        Err(ApiError { code: Some("card_declined"), extra, ..ApiError::new(402, "card_error", message) })
    }

    /// Marks the PaymentIntent succeeded and returns its `payment_intent.succeeded` Event,
    /// delivered when the status changed. None if unknown.
    fn succeed(&mut self, pi_id: &str) -> Option<Value> {
        let intent = self.intents.iter_mut().find(|i| i["id"] == pi_id)?;
        if intent["status"] == "succeeded" {
            return Some(event("payment_intent.succeeded", intent.clone()));
        }
        let payment_method = stripe_id("pm_1");
        let charge = charge(intent, "succeeded", &payment_method);
        intent["status"] = json!("succeeded");
        intent["amount_received"] = intent["amount"].clone();
        intent["latest_charge"] = charge["id"].clone();
        intent["payment_method"] = json!(payment_method);
        intent["last_payment_error"] = Value::Null;
        let intent = intent.clone();
        self.charges.push(charge);
        Some(self.emit("payment_intent.succeeded", intent))
    }

    /// Declines a payment (a generic card decline, with its failed charge) and returns the
    /// `payment_intent.payment_failed` Event. None if unknown or already succeeded.
    fn decline(&mut self, pi_id: &str) -> Option<Value> {
        let intent = self.intents.iter_mut().find(|i| i["id"] == pi_id && i["status"] != "succeeded")?;
        let payment_method = stripe_id("pm_1");
        let charge = charge(intent, "failed", &payment_method);
        intent["status"] = json!("requires_payment_method");
        intent["latest_charge"] = charge["id"].clone();
        intent["payment_method"] = Value::Null;
        intent["last_payment_error"] = json!({
            "charge": charge["id"],
            "code": "card_declined",
            "decline_code": "generic_decline",
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "message": "Your card was declined.",
            "payment_method": { "id": payment_method, "object": "payment_method", "type": "card" },
            "type": "card_error",
        });
        let intent = intent.clone();
        self.charges.push(charge);
        Some(self.emit("payment_intent.payment_failed", intent))
    }

    /// Brings a PaymentIntent's succeeded charge up to date with its refunds (amount_refunded =
    /// sum of succeeded refunds, refunded = fully refunded) and returns it.
    fn refund_charge(&mut self, pi_id: &str) -> Option<Value> {
        let charge_id = self.intents.iter().find(|i| i["id"] == pi_id)?["latest_charge"].as_str()?.to_owned();
        let refunded = refunded_sum(&self.refunds, pi_id, |status| status == "succeeded");
        let charge = self.charges.iter_mut().find(|c| c["id"] == charge_id.as_str() && c["status"] == "succeeded")?;
        charge["amount_refunded"] = json!(refunded);
        charge["refunded"] = json!(refunded >= charge["amount"].as_i64().unwrap_or(0));
        Some(charge.clone())
    }

    /// Creates an Event around `object`, a second later than the last one if need be, and queues
    /// it for delivery: a billing object's to its account's platform endpoint, when there is
    /// one; any other object's, when webhooks are delivered and the object's vendor has a
    /// signing secret, to that vendor's endpoint.
    fn emit(&mut self, event_type: &str, object: Value) -> Value {
        self.emit_event(event(event_type, object))
    }

    /// [`State::emit`] for an `*.updated` event, with the changed fields' former values.
    fn emit_updated(&mut self, event_type: &str, object: Value, previous: Map<String, Value>) -> Value {
        let mut event = event(event_type, object);
        event["data"]["previous_attributes"] = Value::Object(previous);
        self.emit_event(event)
    }

    fn emit_event(&mut self, mut event: Value) -> Value {
        let created = now().max(self.last_event + 1);
        self.last_event = created;
        event["created"] = json!(created);
        let object = &event["data"]["object"];
        let owner = object["id"].as_str().and_then(|id| self.owners.get(id));
        if let Some(owner) = owner {
            if let Some(Endpoint { url, secret }) = self.platform_webhooks.get(owner) {
                self.outbox.push(Outgoing { event: event.clone(), url: url.clone(), secret: secret.clone() });
            }
        } else if let Some(webhooks) = &self.webhooks
            && let Some(vendor) = object["metadata"]["bestow_vendor"].as_str()
            && let Some(secret) = webhooks.secrets.get(vendor)
        {
            let url = format!("{}{vendor}", webhooks.endpoint_base);
            self.outbox.push(Outgoing { event: event.clone(), url, secret: secret.clone() });
        }
        event
    }

    fn create_refund(&mut self, form: &[(String, String)]) -> Result<Value, ApiError> {
        check_params(form, &["payment_intent", "amount", "reason"])?;
        let pi_id = param(form, "payment_intent").ok_or_else(|| ApiError::missing("payment_intent"))?;
        let amount = amount_param(form, "amount")?;
        let reason = param(form, "reason");
        if let Some(reason) = reason.filter(|r| !["duplicate", "fraudulent", "requested_by_customer"].contains(r)) {
            let message =
                format!("Invalid reason: {reason}; must be one of duplicate, fraudulent, or requested_by_customer");
            return Err(ApiError::invalid("reason", None, message));
        }
        let intent = self.intents.iter().find(|i| i["id"] == pi_id);
        let intent = intent.ok_or_else(|| ApiError::no_such("payment_intent", "payment_intent", pi_id))?;
        let charge = intent["latest_charge"].as_str().filter(|_| intent["status"] == "succeeded").ok_or_else(|| {
            let message = "This PaymentIntent does not have a successful charge to refund.".to_owned();
            ApiError { param: Some("payment_intent".into()), ..ApiError::new(400, "invalid_request_error", message) }
        })?;
        let received = intent["amount_received"].as_i64().unwrap_or(0);
        let remaining = received - refunded_sum(&self.refunds, pi_id, |s| s != "failed" && s != "canceled");
        if remaining <= 0 {
            let message = format!("Charge {charge} has already been refunded.");
            let code = Some("charge_already_refunded");
            return Err(ApiError { code, ..ApiError::new(400, "invalid_request_error", message) });
        }
        let amount = amount.unwrap_or(remaining);
        if amount > remaining {
            let message = format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})");
            let (code, param) = (Some("amount_too_large"), Some("amount".to_owned()));
            return Err(ApiError { code, param, ..ApiError::new(400, "invalid_request_error", message) });
        }
        let refund = json!({
            "id": stripe_id("re_3"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": null,
            "charge": charge,
            "created": now(),
            "currency": intent["currency"],
            "metadata": metadata(form),
            "payment_intent": pi_id,
            "reason": reason,
            "receipt_number": null,
            "source_transfer_reversal": null,
            "status": self.refund_status,
            "transfer_reversal": null,
        });
        self.refunds.push(refund.clone());
        // A refund that succeeds at once refunds the charge now; a pending one, when it settles.
        if self.refund_status == "succeeded"
            && let Some(charge) = self.refund_charge(pi_id)
        {
            self.emit("charge.refunded", charge);
        }
        Ok(refund)
    }
}

/// Stripe Billing: Customers, Checkout Sessions, Subscriptions and Invoices, each owned by the
/// account (secret key) that created it; another account's are missing for a key, as on Stripe.
impl State {
    fn create_customer(&mut self, key: &str, form: &[(String, String)]) -> Result<Value, ApiError> {
        check_params(form, &["email", "name", "description", "phone"])?;
        let email = param(form, "email");
        if let Some(email) = email.filter(|e| !e.contains('@')) {
            return Err(ApiError::invalid("email", Some("email_invalid"), format!("Invalid email address: {email}")));
        }
        let id = format!("cus_{}", random_chars(14));
        let customer = json!({
            "id": id,
            "object": "customer",
            "address": null,
            "balance": 0,
            "created": now(),
            "currency": null,
            "default_source": null,
            "delinquent": false,
            "description": param(form, "description"),
            "discount": null,
            "email": email,
            "invoice_prefix": random_chars(8).to_ascii_uppercase(),
            "invoice_settings": {
                "custom_fields": null,
                "default_payment_method": null,
                "footer": null,
                "rendering_options": null,
            },
            "livemode": false,
            "metadata": metadata(form),
            "name": param(form, "name"),
            "next_invoice_sequence": 1,
            "phone": param(form, "phone"),
            "preferred_locales": [],
            "shipping": null,
            "tax_exempt": "none",
            "test_clock": null,
        });
        self.owners.insert(id, key.to_owned());
        self.customers.push(customer.clone());
        Ok(customer)
    }

    /// `POST /v1/checkout/sessions`, in `subscription` mode only, for one existing Customer of
    /// the account and one Price.
    fn create_session(&mut self, key: &str, form: &[(String, String)]) -> Result<Value, ApiError> {
        const SUBSCRIPTION_METADATA: &str = "subscription_data[metadata][";
        let nested = |k: &str| k.starts_with(SUBSCRIPTION_METADATA) && k.ends_with(']');
        let plain: Vec<(String, String)> = form.iter().filter(|(k, _)| !nested(k)).cloned().collect();
        check_params(
            &plain,
            &[
                "mode",
                "customer",
                "line_items[0][price]",
                "line_items[0][quantity]",
                "success_url",
                "cancel_url",
                "client_reference_id",
            ],
        )?;
        match param(form, "mode") {
            None => return Err(ApiError::missing("mode")),
            Some("subscription") => {}
            Some(mode @ ("payment" | "setup")) => {
                let message =
                    format!("The Stripe fake creates Checkout Sessions in subscription mode only, not in {mode} mode.");
                return Err(ApiError::invalid("mode", Some("parameter_invalid"), message));
            }
            Some(_) => {
                let message = "Invalid mode: must be one of payment, setup, or subscription".to_owned();
                return Err(ApiError::invalid("mode", None, message));
            }
        }
        let customer_id = param(form, "customer").ok_or_else(|| ApiError::missing("customer"))?;
        let price_id = param(form, "line_items[0][price]").ok_or_else(|| ApiError::missing("line_items[0][price]"))?;
        let quantity = amount_param(form, "line_items[0][quantity]")?.ok_or_else(|| {
            let message = "Quantity is required. Add `quantity` to `line_items[0]`".to_owned();
            ApiError::invalid("line_items[0][quantity]", Some("parameter_missing"), message)
        })?;
        let url = |name: &str| {
            let url = param(form, name).ok_or_else(|| ApiError::missing(name))?;
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return Err(ApiError::invalid(name, Some("url_invalid"), "Not a valid URL".to_owned()));
            }
            Ok(url)
        };
        let (success_url, cancel_url) = (url("success_url")?, url("cancel_url")?);
        if owned(&self.customers, &self.owners, key, customer_id).is_none() {
            return Err(ApiError { status: 400, ..ApiError::no_such("customer", "customer", customer_id) });
        }
        let price = self.prices.iter().find(|p| p["id"] == price_id);
        let price = price
            .ok_or_else(|| ApiError { status: 400, ..ApiError::no_such("price", "line_items[0][price]", price_id) })?;
        let id = format!("cs_test_a1{}", random_chars(56));
        let created = now();
        let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
        let session = json!({
            "id": id,
            "object": "checkout.session",
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": amount,
            "amount_total": amount,
            "automatic_tax": { "enabled": false, "liability": null, "status": null },
            "billing_address_collection": null,
            "cancel_url": cancel_url,
            "client_reference_id": param(form, "client_reference_id"),
            "client_secret": null,
            "created": created,
            "currency": price["currency"],
            "customer": customer_id,
            "customer_creation": null,
            "customer_details": null,
            "customer_email": null,
            "expires_at": created + CHECKOUT_LIFETIME,
            "invoice": null,
            "livemode": false,
            "locale": null,
            "metadata": metadata(form),
            "mode": "subscription",
            "payment_intent": null,
            "payment_link": null,
            "payment_method_collection": "always",
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "submit_type": null,
            "subscription": null,
            "success_url": success_url,
            "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
            "ui_mode": "hosted",
            "url": format!("{}/checkout/{id}", self.base_url),
        });
        self.owners.insert(id, key.to_owned());
        self.sessions.push(Session {
            object: session.clone(),
            price: price_id.to_owned(),
            quantity,
            subscription_metadata: prefixed_metadata(form, SUBSCRIPTION_METADATA),
        });
        Ok(session)
    }

    /// See [`StripeFake::complete_checkout`].
    fn complete_checkout(&mut self, cs_id: &str) -> Option<Vec<Value>> {
        let session = self.sessions.iter().find(|s| s.object["id"] == cs_id && s.object["status"] == "open")?;
        let price = self.prices.iter().find(|p| p["id"] == session.price.as_str())?.clone();
        let (customer, quantity) = (session.object["customer"].clone(), session.quantity);
        let metadata = session.subscription_metadata.clone();
        let key = self.owners.get(cs_id)?.clone();
        let start = now();
        let end = start + period_seconds(&price);
        let (sub_id, invoice_id) = (stripe_id("sub_1"), stripe_id("in_1"));
        let subscription = json!({
            "id": sub_id,
            "object": "subscription",
            "application": null,
            "application_fee_percent": null,
            "automatic_tax": { "enabled": false, "liability": null },
            "billing_cycle_anchor": start,
            "billing_thresholds": null,
            "cancel_at": null,
            "cancel_at_period_end": false,
            "canceled_at": null,
            "cancellation_details": { "comment": null, "feedback": null, "reason": null },
            "collection_method": "charge_automatically",
            "created": start,
            "currency": price["currency"],
            "current_period_end": end,
            "current_period_start": start,
            "customer": customer,
            "days_until_due": null,
            "default_payment_method": stripe_id("pm_1"),
            "description": null,
            "discount": null,
            "discounts": [],
            "ended_at": null,
            "items": {
                "object": "list",
                "data": [{
                    "id": format!("si_{}", random_chars(14)),
                    "object": "subscription_item",
                    "created": start,
                    "metadata": {},
                    "price": price,
                    "quantity": quantity,
                    "subscription": sub_id,
                }],
                "has_more": false,
                "total_count": 1,
                "url": format!("/v1/subscription_items?subscription={sub_id}"),
            },
            "latest_invoice": invoice_id,
            "livemode": false,
            "metadata": metadata,
            "pause_collection": null,
            "quantity": quantity,
            "start_date": start,
            "status": "active",
            "test_clock": null,
            "trial_end": null,
            "trial_start": null,
        });
        self.owners.insert(sub_id.clone(), key);
        self.subscriptions.push(subscription.clone());
        let mut events = vec![self.emit("customer.subscription.created", subscription.clone())];
        let invoice =
            self.draft_invoice(&invoice_id, &subscription, "subscription_create", (start, start), (start, end));
        events.push(self.emit("invoice.created", invoice));
        let invoice = self.finalize_invoice(&invoice_id)?;
        events.push(self.emit("invoice.finalized", invoice));
        let invoice = self.charge_invoice(&invoice_id, true)?;
        events.push(self.emit("invoice.paid", invoice.clone()));
        events.push(self.emit("invoice.payment_succeeded", invoice));
        let details = self.customers.iter().find(|c| c["id"] == customer).map(|c| {
            let (email, name, phone) = (&c["email"], &c["name"], &c["phone"]);
            json!({ "address": null, "email": email, "name": name, "phone": phone, "tax_exempt": "none", "tax_ids": [] })
        });
        let session = &mut self.sessions.iter_mut().find(|s| s.object["id"] == cs_id)?.object;
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["subscription"] = json!(sub_id);
        session["invoice"] = json!(invoice_id);
        session["customer_details"] = details.unwrap_or_default();
        session["url"] = Value::Null;
        let session = session.clone();
        events.push(self.emit("checkout.session.completed", session));
        Some(events)
    }

    /// Creates a draft Invoice of `subscription`'s item: `period` is the Invoice's own (which on
    /// Stripe looks back one period), `service` its line's (the period billed).
    fn draft_invoice(
        &mut self,
        id: &str,
        subscription: &Value,
        billing_reason: &str,
        period: (i64, i64),
        service: (i64, i64),
    ) -> Value {
        let item = &subscription["items"]["data"][0];
        let price = &item["price"];
        let quantity = item["quantity"].as_i64().unwrap_or(1);
        let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
        let product = self.products.iter().find(|p| p["id"] == price["product"]);
        let product_name = product.and_then(|p| p["name"].as_str()).unwrap_or("Subscription");
        let customer = self.customers.iter().find(|c| c["id"] == subscription["customer"]);
        let customer_field = |field: &str| customer.map_or(Value::Null, |c| c[field].clone());
        let line = json!({
            "id": stripe_id("il_1"),
            "object": "line_item",
            "amount": amount,
            "currency": price["currency"],
            "description": format!("{quantity} × {product_name}"),
            "discountable": true,
            "invoice": id,
            "livemode": false,
            "metadata": {},
            "period": { "end": service.1, "start": service.0 },
            "price": price,
            "proration": false,
            "quantity": quantity,
            "subscription": subscription["id"],
            "subscription_item": item["id"],
            "type": "subscription",
        });
        let invoice = json!({
            "id": id,
            "object": "invoice",
            "amount_due": amount,
            "amount_paid": 0,
            "amount_remaining": amount,
            "attempt_count": 0,
            "attempted": false,
            "auto_advance": true,
            "billing_reason": billing_reason,
            "charge": null,
            "collection_method": "charge_automatically",
            "created": now(),
            "currency": price["currency"],
            "customer": subscription["customer"],
            "customer_email": customer_field("email"),
            "customer_name": customer_field("name"),
            "description": null,
            "due_date": null,
            "effective_at": null,
            "ending_balance": null,
            "hosted_invoice_url": null,
            "invoice_pdf": null,
            "lines": {
                "object": "list",
                "data": [line],
                "has_more": false,
                "total_count": 1,
                "url": format!("/v1/invoices/{id}/lines"),
            },
            "livemode": false,
            "metadata": {},
            "next_payment_attempt": null,
            "number": null,
            "paid": false,
            "paid_out_of_band": false,
            "payment_intent": null,
            "period_end": period.1,
            "period_start": period.0,
            "starting_balance": 0,
            "status": "draft",
            "status_transitions": {
                "finalized_at": null,
                "marked_uncollectible_at": null,
                "paid_at": null,
                "voided_at": null,
            },
            "subscription": subscription["id"],
            "subscription_details": { "metadata": subscription["metadata"] },
            "subtotal": amount,
            "total": amount,
        });
        let owner = subscription["id"].as_str().and_then(|sub_id| self.owners.get(sub_id)).cloned();
        self.owners.insert(id.to_owned(), owner.unwrap_or_default());
        self.invoices.push(invoice.clone());
        invoice
    }

    /// Finalizes a draft Invoice: open, numbered after its Customer's prefix and sequence, with
    /// its hosted page.
    fn finalize_invoice(&mut self, id: &str) -> Option<Value> {
        let customer = self.invoices.iter().find(|i| i["id"] == id)?["customer"].clone();
        let number = self.customers.iter_mut().find(|c| c["id"] == customer).map(|customer| {
            let sequence = customer["next_invoice_sequence"].as_i64().unwrap_or(1);
            customer["next_invoice_sequence"] = json!(sequence + 1);
            format!("{}-{sequence:04}", customer["invoice_prefix"].as_str().unwrap_or_default())
        });
        let hosted = format!("{}/invoice/{id}", self.base_url);
        let invoice = self.invoices.iter_mut().find(|i| i["id"] == id && i["status"] == "draft")?;
        let at = now();
        invoice["status"] = json!("open");
        invoice["number"] = json!(number);
        invoice["hosted_invoice_url"] = json!(hosted);
        invoice["effective_at"] = json!(at);
        invoice["ending_balance"] = json!(0);
        invoice["status_transitions"]["finalized_at"] = json!(at);
        Some(invoice.clone())
    }

    /// One attempt to collect an open Invoice: paid, or still open with its next retry planned.
    fn charge_invoice(&mut self, id: &str, succeeds: bool) -> Option<Value> {
        let invoice = self.invoices.iter_mut().find(|i| i["id"] == id && i["status"] == "open")?;
        let at = now();
        invoice["attempt_count"] = json!(invoice["attempt_count"].as_i64().unwrap_or(0) + 1);
        invoice["attempted"] = json!(true);
        if succeeds {
            invoice["status"] = json!("paid");
            invoice["paid"] = json!(true);
            invoice["amount_paid"] = invoice["amount_due"].clone();
            invoice["amount_remaining"] = json!(0);
            invoice["next_payment_attempt"] = Value::Null;
            invoice["status_transitions"]["paid_at"] = json!(at);
        } else {
            invoice["next_payment_attempt"] = json!(at + PAYMENT_RETRY_DELAY);
        }
        Some(invoice.clone())
    }

    /// See [`StripeFake::renew_subscription`].
    fn renew(&mut self, sub_id: &str, pays: bool) -> Option<Vec<Value>> {
        let subscription = self.subscriptions.iter().find(|s| s["id"] == sub_id)?.clone();
        let status = subscription["status"].as_str().unwrap_or_default();
        if !["active", "trialing", "past_due", "unpaid"].contains(&status) {
            return None;
        }
        let start = subscription["current_period_start"].as_i64()?;
        let end = subscription["current_period_end"].as_i64()?;
        if subscription["cancel_at_period_end"] == true {
            let ended = self.subscriptions.iter_mut().find(|s| s["id"] == sub_id)?;
            ended["status"] = json!("canceled");
            ended["ended_at"] = json!(end);
            let ended = ended.clone();
            return Some(vec![self.emit("customer.subscription.deleted", ended)]);
        }
        let next_end = end + period_seconds(&subscription["items"]["data"][0]["price"]);
        let invoice_id = stripe_id("in_1");
        let invoice =
            self.draft_invoice(&invoice_id, &subscription, "subscription_cycle", (start, end), (end, next_end));
        let mut events = vec![self.emit("invoice.created", invoice)];
        let invoice = self.finalize_invoice(&invoice_id)?;
        events.push(self.emit("invoice.finalized", invoice));
        let invoice = self.charge_invoice(&invoice_id, pays)?;
        if pays {
            events.push(self.emit("invoice.paid", invoice.clone()));
            events.push(self.emit("invoice.payment_succeeded", invoice));
        } else {
            events.push(self.emit("invoice.payment_failed", invoice));
        }
        let status = match (pays, status) {
            (true, _) => "active",
            (false, "unpaid") => "unpaid",
            (false, _) => "past_due",
        };
        let renewed = self.subscriptions.iter_mut().find(|s| s["id"] == sub_id)?;
        let mut previous = Map::new();
        change(renewed, &mut previous, "current_period_start", json!(end));
        change(renewed, &mut previous, "current_period_end", json!(next_end));
        change(renewed, &mut previous, "latest_invoice", json!(invoice_id));
        change(renewed, &mut previous, "status", json!(status));
        let renewed = renewed.clone();
        events.push(self.emit_updated("customer.subscription.updated", renewed, previous));
        Some(events)
    }

    /// See [`StripeFake::pay_open_invoice`].
    fn pay_open_invoice(&mut self, invoice_id: &str) -> Option<Vec<Value>> {
        let invoice = self.charge_invoice(invoice_id, true)?;
        let mut events = vec![self.emit("invoice.paid", invoice.clone())];
        events.push(self.emit("invoice.payment_succeeded", invoice.clone()));
        let subscription = self.subscriptions.iter_mut().find(|s| {
            s["id"] == invoice["subscription"]
                && s["latest_invoice"] == invoice_id
                && ["past_due", "unpaid", "incomplete"].contains(&s["status"].as_str().unwrap_or_default())
        });
        if let Some(subscription) = subscription {
            let mut previous = Map::new();
            change(subscription, &mut previous, "status", json!("active"));
            let subscription = subscription.clone();
            events.push(self.emit_updated("customer.subscription.updated", subscription, previous));
        }
        Some(events)
    }

    /// See [`StripeFake::set_subscription_status`].
    fn set_subscription_status(&mut self, sub_id: &str, status: &str) -> Option<Vec<Value>> {
        let subscription = self.subscriptions.iter_mut().find(|s| s["id"] == sub_id)?;
        if subscription["status"] == "canceled" || subscription["status"] == "incomplete_expired" {
            return None;
        }
        if subscription["status"] == status {
            return Some(Vec::new());
        }
        let at = now();
        let mut previous = Map::new();
        change(subscription, &mut previous, "status", json!(status));
        if status == "canceled" {
            if subscription["canceled_at"].is_null() {
                subscription["canceled_at"] = json!(at);
            }
            subscription["ended_at"] = json!(at);
            if subscription["cancellation_details"]["reason"].is_null() {
                subscription["cancellation_details"]["reason"] = json!("payment_failed");
            }
            let subscription = subscription.clone();
            return Some(vec![self.emit("customer.subscription.deleted", subscription)]);
        }
        if status == "incomplete_expired" {
            change(subscription, &mut previous, "ended_at", json!(at));
        }
        let subscription = subscription.clone();
        Some(vec![self.emit_updated("customer.subscription.updated", subscription, previous)])
    }

    /// `POST /v1/subscriptions/{id}`: `cancel_at_period_end`, `cancellation_details`,
    /// `metadata` (an empty value removes a key). A change emits `customer.subscription.updated`.
    fn update_subscription(&mut self, key: &str, id: &str, form: &[(String, String)]) -> Result<Value, ApiError> {
        check_params(
            form,
            &["cancel_at_period_end", "cancellation_details[comment]", "cancellation_details[feedback]"],
        )?;
        let cancel = bool_param(form, "cancel_at_period_end")?;
        let details = cancellation_details(form)?;
        let subscription = owned_mut(&mut self.subscriptions, &self.owners, key, id);
        let subscription = subscription.ok_or_else(|| ApiError::no_such("subscription", "id", id))?;
        if subscription["status"] == "canceled" && cancel.is_some() {
            let message = "A canceled subscription can only update its cancellation_details and metadata.";
            return Err(ApiError::new(400, "invalid_request_error", message.to_owned()));
        }
        let mut previous = Map::new();
        let mut cancellation = subscription["cancellation_details"].clone();
        if let Some(cancel) = cancel
            && subscription["cancel_at_period_end"] != cancel
        {
            let (end, at) = (subscription["current_period_end"].clone(), json!(now()));
            change(subscription, &mut previous, "cancel_at_period_end", json!(cancel));
            change(subscription, &mut previous, "cancel_at", if cancel { end } else { Value::Null });
            change(subscription, &mut previous, "canceled_at", if cancel { at } else { Value::Null });
            cancellation["reason"] = if cancel { json!("cancellation_requested") } else { Value::Null };
        }
        for (field, value) in details {
            cancellation[field] = value;
        }
        change(subscription, &mut previous, "cancellation_details", cancellation);
        let mut merged = subscription["metadata"].as_object().cloned().unwrap_or_default();
        for (name, value) in metadata(form).as_object().into_iter().flatten() {
            if value == "" {
                merged.remove(name);
            } else {
                merged.insert(name.clone(), value.clone());
            }
        }
        change(subscription, &mut previous, "metadata", Value::Object(merged));
        let subscription = subscription.clone();
        if !previous.is_empty() {
            self.emit_updated("customer.subscription.updated", subscription.clone(), previous);
        }
        Ok(subscription)
    }

    /// `DELETE /v1/subscriptions/{id}`: cancels now and emits `customer.subscription.deleted`.
    /// An already canceled Subscription is missing, as on Stripe.
    fn cancel_subscription(&mut self, key: &str, id: &str, form: &[(String, String)]) -> Result<Value, ApiError> {
        check_params(
            form,
            &["invoice_now", "prorate", "cancellation_details[comment]", "cancellation_details[feedback]"],
        )?;
        bool_param(form, "invoice_now")?;
        bool_param(form, "prorate")?;
        let details = cancellation_details(form)?;
        let subscription =
            owned_mut(&mut self.subscriptions, &self.owners, key, id).filter(|s| s["status"] != "canceled");
        let subscription = subscription.ok_or_else(|| ApiError::no_such("subscription", "id", id))?;
        let at = now();
        subscription["status"] = json!("canceled");
        subscription["canceled_at"] = json!(at);
        subscription["ended_at"] = json!(at);
        subscription["cancellation_details"]["reason"] = json!("cancellation_requested");
        for (field, value) in details {
            subscription["cancellation_details"][field] = value;
        }
        let subscription = subscription.clone();
        self.emit("customer.subscription.deleted", subscription.clone());
        Ok(subscription)
    }

    /// The HTML page a customer's browser opens at `path`: a Checkout Session's
    /// (`/checkout/{id}`) or a hosted Invoice's (`/invoice/{id}`); 404 when unknown. None for
    /// any other path.
    fn page(&self, path: &str) -> Option<(u16, String)> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let (title, id, status) = match segments.as_slice() {
            ["", "checkout", id] => {
                let session = self.sessions.iter().find(|s| s.object["id"] == *id);
                ("Checkout", id, session.map(|s| s.object["status"].clone()))
            }
            ["", "invoice", id] => {
                ("Invoice", id, self.invoices.iter().find(|i| i["id"] == *id).map(|i| i["status"].clone()))
            }
            _ => return None,
        };
        Some(match status {
            Some(status) => {
                let status = status.as_str().unwrap_or_default();
                let html = format!(
                    "<!DOCTYPE html>\n<html><head><title>{title} {id}</title></head>\
                     <body><h1>Stripe fake: {title}</h1><p>{id}: {status}</p></body></html>\n"
                );
                (200, html)
            }
            None => (404, "<!DOCTYPE html>\n<html><body><h1>Not found</h1></body></html>\n".to_owned()),
        })
    }
}

/// A realistic Event envelope around any object.
fn event(event_type: &str, object: Value) -> Value {
    json!({
        "id": stripe_id("evt_3"),
        "object": "event",
        "api_version": API_VERSION,
        "created": now(),
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type,
    })
}

/// Sends each event on a task of its own, as Stripe does.
fn send(runtime: &Handle, state: &Arc<Mutex<State>>, outbox: Vec<Outgoing>) {
    for outgoing in outbox {
        runtime.spawn(deliver(Arc::clone(state), outgoing));
    }
}

/// Delivers one event, signed anew at each attempt: retried after 1, 2 and 4 s while the
/// endpoint cannot be reached or does not answer 2xx. Every attempt is recorded.
async fn deliver(state: Arc<Mutex<State>>, outgoing: Outgoing) {
    let Outgoing { event, url, secret } = outgoing;
    let body = pretty(&event);
    let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
    let (event_id, event_type) = (text("id"), text("type"));
    let waits = std::iter::once(Duration::ZERO).chain(WEBHOOK_RETRY_WAITS);
    for (attempt, wait) in waits.enumerate() {
        tokio::time::sleep(wait).await;
        let signature = bestow::integrations::stripe::signature_header(body.as_bytes(), now(), &secret);
        let headers = [
            ("User-Agent", WEBHOOK_USER_AGENT),
            ("Content-Type", "application/json; charset=utf-8"),
            ("Stripe-Signature", signature.as_str()),
            ("Accept", "*/*; q=0.5, application/xml"),
            ("Cache-Control", "no-cache"),
        ];
        let answer = super::post(&url, &headers, &body).await;
        let delivered = matches!(answer, Ok(200..=299));
        let (status, error) = match answer {
            Ok(status) => (Some(status), None),
            Err(error) => (None, Some(error)),
        };
        if delivered {
            tracing::info!(%event_id, %event_type, %url, ?status, "stripe fake: webhook delivered");
        } else {
            tracing::warn!(%event_id, %event_type, %url, ?status, ?error, attempt, "stripe fake: webhook failed");
        }
        let delivery =
            Delivery { event_id: event_id.clone(), event_type: event_type.clone(), url: url.clone(), status, error };
        lock(&state).deliveries.push(delivery);
        if delivered {
            return;
        }
    }
}

/// A charge of `intent`, succeeded or failed.
fn charge(intent: &Value, status: &str, payment_method: &str) -> Value {
    let succeeded = status == "succeeded";
    json!({
        "id": stripe_id("ch_3"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": if succeeded { intent["amount"].clone() } else { json!(0) },
        "amount_refunded": 0,
        "balance_transaction": null,
        "captured": succeeded,
        "created": now(),
        "currency": intent["currency"],
        "description": intent["description"],
        "failure_code": if succeeded { Value::Null } else { json!("card_declined") },
        "failure_message": if succeeded { Value::Null } else { json!("Your card was declined.") },
        "livemode": false,
        "metadata": intent["metadata"],
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": payment_method,
        "receipt_email": intent["receipt_email"],
        "refunded": false,
        "status": status,
    })
}

/// The error body of an injected failure.
fn injected(status: u16) -> ApiError {
    match status {
        429 => ApiError {
            code: Some("rate_limit"),
            ..ApiError::new(429, "invalid_request_error", "Request rate limit exceeded. Try again later.".to_owned())
        },
        500.. => {
            ApiError::new(status, "api_error", "An unknown error occurred while processing the request.".to_owned())
        }
        _ => ApiError::new(status, "invalid_request_error", format!("Injected failure ({status}).")),
    }
}

/// The sum of `pi_id`'s refunds whose status passes `counts`.
fn refunded_sum(refunds: &[Value], pi_id: &str, counts: impl Fn(&str) -> bool) -> i64 {
    let of_intent = refunds.iter().filter(|r| r["payment_intent"] == pi_id);
    of_intent.filter(|r| counts(r["status"].as_str().unwrap_or(""))).filter_map(|r| r["amount"].as_i64()).sum()
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// An optional positive integer parameter, with Stripe's validation errors.
fn amount_param(form: &[(String, String)], name: &str) -> Result<Option<i64>, ApiError> {
    let Some(raw) = param(form, name) else { return Ok(None) };
    let code = Some("parameter_invalid_integer");
    let value: i64 = raw.parse().map_err(|_| ApiError::invalid(name, code, format!("Invalid integer: {raw}")))?;
    if value < 1 {
        return Err(ApiError::invalid(name, code, "This value must be greater than or equal to 1.".to_owned()));
    }
    Ok(Some(value))
}

/// An optional boolean parameter (`true` or `false`).
fn bool_param(form: &[(String, String)], name: &str) -> Result<Option<bool>, ApiError> {
    match param(form, name) {
        None => Ok(None),
        Some(flag @ ("true" | "false")) => Ok(Some(flag == "true")),
        Some(other) => Err(ApiError::invalid(name, None, format!("Invalid boolean: {other}"))),
    }
}

/// The `cancellation_details[comment|feedback]` parameters (empty: unset), the feedback checked
/// as Stripe does.
fn cancellation_details(form: &[(String, String)]) -> Result<Vec<(&'static str, Value)>, ApiError> {
    const FEEDBACK: [&str; 8] = [
        "customer_service",
        "low_quality",
        "missing_features",
        "other",
        "switched_service",
        "too_complex",
        "too_expensive",
        "unused",
    ];
    let or_null = |value: &str| if value.is_empty() { Value::Null } else { json!(value) };
    let mut details = Vec::new();
    if let Some(comment) = param(form, "cancellation_details[comment]") {
        details.push(("comment", or_null(comment)));
    }
    if let Some(feedback) = param(form, "cancellation_details[feedback]") {
        if !feedback.is_empty() && !FEEDBACK.contains(&feedback) {
            let message = format!("Invalid cancellation_details[feedback]: must be one of {}", FEEDBACK.join(", "));
            return Err(ApiError::invalid("cancellation_details[feedback]", None, message));
        }
        details.push(("feedback", or_null(feedback)));
    }
    Ok(details)
}

/// Sets `object[field]`, keeping its former value in `previous` (an event's
/// `previous_attributes`) when it changes.
fn change(object: &mut Value, previous: &mut Map<String, Value>, field: &str, value: Value) {
    if object[field] != value {
        let former = std::mem::replace(&mut object[field], value);
        previous.entry(field).or_insert(former);
    }
}

/// Whether the account of `key` owns the billing object `id`.
fn owns(owners: &HashMap<String, String>, key: &str, id: &str) -> bool {
    owners.get(id).is_some_and(|owner| owner == key)
}

/// The billing object `id` among `objects`, if the account of `key` owns it.
fn owned<'a>(objects: &'a [Value], owners: &HashMap<String, String>, key: &str, id: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["id"] == id).filter(|_| owns(owners, key, id))
}

/// [`owned`], to change it.
fn owned_mut<'a>(
    objects: &'a mut [Value],
    owners: &HashMap<String, String>,
    key: &str,
    id: &str,
) -> Option<&'a mut Value> {
    objects.iter_mut().find(|o| o["id"] == id).filter(|_| owns(owners, key, id))
}

/// One period of a recurring Price, in seconds (a month is 30 days, a year 365).
fn period_seconds(price: &Value) -> i64 {
    match price["recurring"]["interval"].as_str() {
        Some("day") => DAY,
        Some("week") => 7 * DAY,
        Some("year") => 365 * DAY,
        _ => 30 * DAY,
    }
}

/// Rejects parameters that are neither `allowed`, `metadata[…]` nor `expand[…]`, as Stripe does.
fn check_params(form: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    let known =
        |k: &str| allowed.contains(&k) || (k.starts_with("metadata[") && k.ends_with(']')) || k.starts_with("expand[");
    match form.iter().find(|(k, _)| !known(k)) {
        Some((k, _)) => {
            Err(ApiError::invalid(k, Some("parameter_unknown"), format!("Received unknown parameter: {k}")))
        }
        None => Ok(()),
    }
}

/// The `metadata[KEY]=VALUE` parameters, as Stripe's metadata object.
fn metadata(form: &[(String, String)]) -> Value {
    prefixed_metadata(form, "metadata[")
}

/// The `<prefix>KEY]=VALUE` parameters (`prefix` ends in `[`, e.g.
/// `subscription_data[metadata][`), as a metadata object.
fn prefixed_metadata(form: &[(String, String)], prefix: &str) -> Value {
    let entries = form.iter().filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.strip_suffix(']')?, v)));
    Value::Object(entries.map(|(k, v)| (k.to_owned(), json!(v))).collect())
}

/// Decodes `application/x-www-form-urlencoded`: `&`-separated `key=value`, `+` is a space,
/// `%XX` a byte (an invalid escape stays as written).
fn parse_form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                (b'+', _) => out.push(b' '),
                (byte, _) => out.push(byte),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let pairs = body.split('&').filter(|pair| !pair.is_empty());
    pairs.map(|pair| pair.split_once('=').unwrap_or((pair, ""))).map(|(k, v)| (decode(k), decode(v))).collect()
}

/// The API key of an `Authorization` header: `Bearer <key>`, or `Basic` with the key as user
/// (what `curl -u sk_test_…:` sends).
fn api_key(header: &str) -> Option<String> {
    use base64::Engine;
    if let Some(key) = header.strip_prefix("Bearer ") {
        return Some(key.trim().to_owned());
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(header.strip_prefix("Basic ")?.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    Some(decoded.split(':').next().unwrap_or_default().to_owned())
}

/// A key with all but its last 4 characters masked.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let shown = chars.len().saturating_sub(4);
    chars.iter().enumerate().map(|(i, c)| if i < shown || chars.len() <= 4 { '*' } else { *c }).collect()
}

/// `prefix` followed by Stripe-looking random characters (24 after the underscore).
fn stripe_id(prefix: &str) -> String {
    let underscore = prefix.find('_').map_or(0, |i| i + 1);
    format!("{prefix}{}", random_chars(24 - (prefix.len() - underscore)))
}

fn random_chars(n: usize) -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(n).map(char::from).collect()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use bestow::integrations::stripe::verify_webhook;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::StripeFake;

    const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

    struct Answer {
        status: u16,
        headers: String,
        body: String,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_str(&self.body).expect("a JSON body")
        }
    }

    /// One HTTP/1.1 request over a fresh connection.
    async fn call(
        fake: &StripeFake,
        method: &str,
        path: &str,
        key: &str,
        idempotency: Option<&str>,
        form: &str,
    ) -> Answer {
        let address = fake.base_url().trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        let idempotency = idempotency.map(|k| format!("Idempotency-Key: {k}\r\n")).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n{idempotency}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
        Answer { status, headers: head.to_ascii_lowercase(), body: body.to_owned() }
    }

    /// A new PaymentIntent of 2500 EUR, with `extra` form parameters: its id.
    async fn create_intent(fake: &StripeFake, extra: &str) -> String {
        let created =
            call(fake, "POST", "/v1/payment_intents", KEY, None, &format!("amount=2500&currency=eur{extra}")).await;
        assert_eq!(created.status, 200, "{}", created.body);
        created.json()["id"].as_str().expect("an id").to_owned()
    }

    async fn confirm(fake: &StripeFake, id: &str, form: &str, idempotency: Option<&str>) -> Answer {
        call(fake, "POST", &format!("/v1/payment_intents/{id}/confirm"), KEY, idempotency, form).await
    }

    /// A webhook endpoint on a loopback port: answers one request per status of `statuses`, in
    /// turn, and hands each request over as (head, body). Its URL ends in `/webhooks/stripe/`.
    async fn endpoint(statuses: Vec<u16>) -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/webhooks/stripe/", listener.local_addr().expect("an address"));
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for status in statuses {
                let (mut stream, _) = listener.accept().await.expect("accept");
                let mut raw = Vec::new();
                let mut chunk = [0; 4096];
                let mut head: Option<(String, usize)> = None;
                while head.as_ref().is_none_or(|(_, length)| raw.len() < *length) {
                    let n = stream.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "the request ended early");
                    raw.extend_from_slice(&chunk[..n]);
                    if head.is_none()
                        && let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n")
                    {
                        let text = String::from_utf8_lossy(&raw[..end]).into_owned();
                        let length = header(&text, "content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                        raw.drain(..end + 4);
                        head = Some((text, length));
                    }
                }
                let answer = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                stream.write_all(answer.as_bytes()).await.expect("answer");
                let _ = sender.send((head.map(|(text, _)| text).unwrap_or_default(), raw));
            }
        });
        (url, receiver)
    }

    /// A header's value in a request head (names are case-insensitive).
    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    #[tokio::test]
    async fn fakes_stripe_payment_and_refunds() {
        let fake = StripeFake::start().await.expect("start");
        let form = "amount=1000&currency=usd&metadata[order_id]=o%2F1&description=Gift+card&automatic_payment_methods[enabled]=true";
        let created = call(&fake, "POST", "/v1/payment_intents", KEY, None, form).await;
        assert_eq!(created.status, 200, "{}", created.body);
        assert!(
            created.headers.contains("content-type: application/json") && created.headers.contains("request-id: req_")
        );
        let intent = created.json();
        let id = intent["id"].as_str().unwrap().to_owned();
        assert!(
            id.starts_with("pi_3") && intent["client_secret"].as_str().unwrap().starts_with(&format!("{id}_secret_"))
        );
        assert_eq!(intent["metadata"]["order_id"], "o/1");
        assert_eq!(intent["description"], "Gift card");
        assert_eq!(intent["automatic_payment_methods"]["enabled"], true);
        assert_eq!(intent["status"], "requires_payment_method");
        assert_eq!(call(&fake, "GET", &format!("/v1/payment_intents/{id}"), KEY, None, "").await.json(), intent);
        let missing = call(&fake, "GET", "/v1/payment_intents/pi_nope", KEY, None, "").await;
        assert_eq!((missing.status, missing.json()["error"]["code"].clone()), (404, "resource_missing".into()));

        let refund = async |form: String| call(&fake, "POST", "/v1/refunds", KEY, None, &form).await;
        let early = refund(format!("payment_intent={id}")).await;
        assert_eq!(early.status, 400);
        assert_eq!(early.json()["error"]["message"], "This PaymentIntent does not have a successful charge to refund.");

        let declined = fake.fail_payment(&id).unwrap();
        assert_eq!(declined["type"], "payment_intent.payment_failed");
        assert_eq!(declined["data"]["object"]["last_payment_error"]["code"], "card_declined");
        let event = fake.succeed_payment(&id).unwrap();
        assert_eq!(event["type"], "payment_intent.succeeded");
        assert_eq!(event["data"]["object"]["amount_received"], 1000);
        assert_eq!(event["data"]["object"]["last_payment_error"], Value::Null);
        assert!(fake.fail_payment(&id).is_none());
        let charge = event["data"]["object"]["latest_charge"].as_str().unwrap().to_owned();
        assert!(charge.starts_with("ch_3"));

        fake.set_refund_status("pending");
        let first = refund(format!("payment_intent={id}&amount=600&reason=requested_by_customer")).await.json();
        assert_eq!((first["status"].as_str(), first["charge"].as_str()), (Some("pending"), Some(charge.as_str())));
        let too_large = refund(format!("payment_intent={id}&amount=500")).await;
        assert_eq!((too_large.status, too_large.json()["error"]["code"].clone()), (400, "amount_too_large".into()));
        let refund_id = first["id"].as_str().unwrap();
        assert_eq!(fake.update_refund(refund_id, "succeeded").unwrap()["type"], "refund.updated");
        let refunded = fake.charge_refunded_event(&id).unwrap();
        assert_eq!(refunded["data"]["object"]["amount_refunded"], 600);
        assert_eq!(refunded["data"]["object"]["refunded"], false);

        fake.set_refund_status("succeeded");
        assert_eq!(refund(format!("payment_intent={id}")).await.json()["amount"], 400);
        let again = refund(format!("payment_intent={id}")).await;
        assert_eq!(again.json()["error"]["code"], "charge_already_refunded");
        assert_eq!(fake.charge_refunded_event(&id).unwrap()["data"]["object"]["refunded"], true);
        assert_eq!(fake.refunds().len(), 2);
    }

    #[tokio::test]
    async fn fakes_stripe_keys_idempotency_and_injected_failures() {
        let fake = StripeFake::start().await.expect("start");
        let path = "/v1/payment_intents";
        let denied = call(&fake, "POST", path, "sk_live_abcdefgh1234", None, "amount=5&currency=eur").await;
        assert_eq!(denied.status, 401);
        assert_eq!(denied.json()["error"]["message"], "Invalid API Key provided: ****************1234");

        let invalid = call(&fake, "POST", path, KEY, Some("k0"), "amount=0&currency=eur").await.json();
        assert_eq!(invalid["error"]["code"], "parameter_invalid_integer");
        let missing = call(&fake, "POST", path, KEY, None, "currency=eur").await.json();
        assert_eq!(
            (missing["error"]["code"].as_str(), missing["error"]["param"].as_str()),
            (Some("parameter_missing"), Some("amount"))
        );

        fake.fail_next(1, 500);
        let failed = call(&fake, "POST", path, KEY, Some("k1"), "amount=5&currency=eur").await;
        assert_eq!((failed.status, failed.json()["error"]["type"].clone()), (500, "api_error".into()));
        let first = call(&fake, "POST", path, KEY, Some("k1"), "amount=5&currency=eur").await;
        let replay = call(&fake, "POST", path, KEY, Some("k1"), "amount=5&currency=eur").await;
        assert_eq!((first.status, replay.status, &first.body), (200, 200, &replay.body));
        assert!(replay.headers.contains("idempotent-replayed: true") && !first.headers.contains("idempotent-replayed"));
        let conflict = call(&fake, "POST", path, KEY, Some("k1"), "amount=6&currency=eur").await;
        assert_eq!((conflict.status, conflict.json()["error"]["type"].clone()), (400, "idempotency_error".into()));
        let other_key = call(&fake, "POST", path, "rk_test_other", Some("k1"), "amount=5&currency=eur").await;
        assert_ne!(other_key.json()["id"], first.json()["id"]);
        assert_eq!(fake.payment_intents().len(), 2);

        fake.fail_next(1, 429);
        let limited = call(&fake, "GET", "/v1/payment_intents/x", KEY, None, "").await;
        assert_eq!((limited.status, limited.json()["error"]["code"].clone()), (429, "rate_limit".into()));
        let requests = fake.requests();
        assert_eq!(requests.len(), 9);
        assert_eq!(requests[0].secret_key.as_deref(), Some("sk_live_abcdefgh1234"));
        assert_eq!(requests[3].idempotency_key.as_deref(), Some("k1"));
        assert_eq!(
            requests[3].form,
            vec![("amount".to_owned(), "5".to_owned()), ("currency".to_owned(), "eur".to_owned())]
        );
    }

    #[test]
    fn fakes_stripe_form_decoding_and_unknown_params() {
        let form = super::parse_form("a=1+2&b%5Bx%5D=%E2%82%AC&c&d=100%&&e=");
        let expected = [("a", "1 2"), ("b[x]", "€"), ("c", ""), ("d", "100%"), ("e", "")];
        assert_eq!(form, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert!(super::check_params(&form, &["a", "b[x]", "c", "d", "e"]).is_ok());
        let unknown = super::check_params(&form, &["a"]).unwrap_err();
        assert_eq!((unknown.code, unknown.param.as_deref()), (Some("parameter_unknown"), Some("b[x]")));
    }

    #[tokio::test]
    async fn fakes_stripe_confirm_pays_declines_and_refuses() {
        let fake = StripeFake::start().await.expect("start");
        let id = create_intent(&fake, "").await;
        let form = "payment_method=pm_card_visa&return_url=https%3A%2F%2Fshop.example%2Fdone&expand[]=latest_charge";
        let paid = confirm(&fake, &id, form, Some("c1")).await;
        assert_eq!(paid.status, 200, "{}", paid.body);
        let intent = paid.json();
        assert_eq!((intent["status"].as_str(), intent["amount_received"].as_i64()), (Some("succeeded"), Some(2500)));
        assert!(intent["latest_charge"].as_str().unwrap().starts_with("ch_3"));
        assert!(intent["payment_method"].as_str().unwrap().starts_with("pm_1"));
        assert_eq!(fake.payment_intent(&id).unwrap(), intent);
        let replay = confirm(&fake, &id, form, Some("c1")).await;
        assert_eq!((replay.status, &replay.body), (200, &paid.body));
        assert!(replay.headers.contains("idempotent-replayed: true"));
        let again = confirm(&fake, &id, "payment_method=pm_card_visa", None).await;
        assert_eq!(again.status, 400);
        let error = &again.json()["error"];
        assert_eq!(
            (error["type"].as_str(), error["code"].as_str()),
            (Some("invalid_request_error"), Some("payment_intent_unexpected_state"))
        );
        assert_eq!(error["payment_intent"], intent);
        assert!(error["message"].as_str().unwrap().contains("already succeeded"));
        // The helper agrees: already succeeded, nothing changes.
        assert_eq!(fake.succeed_payment(&id).unwrap()["data"]["object"], intent);

        let declining = create_intent(&fake, "").await;
        for card in ["pm_card_visa_chargeDeclined", "pm_card_chargeDeclined"] {
            let declined = confirm(&fake, &declining, &format!("payment_method={card}"), None).await;
            assert_eq!(declined.status, 402, "{}", declined.body);
            let error = &declined.json()["error"];
            assert_eq!((error["type"].as_str(), error["code"].as_str()), (Some("card_error"), Some("card_declined")));
            assert_eq!(error["decline_code"], "generic_decline");
            assert_eq!(error["message"], "Your card was declined.");
            assert_eq!(error["doc_url"], "https://stripe.com/docs/error-codes/card-declined");
            assert!(error["charge"].as_str().unwrap().starts_with("ch_3"));
            assert_eq!(error["payment_intent"], fake.payment_intent(&declining).unwrap());
            assert_eq!(error["payment_intent"]["status"], "requires_payment_method");
            assert_eq!(error["payment_intent"]["last_payment_error"]["charge"], error["charge"]);
        }
        let retried = confirm(&fake, &declining, "payment_method=pm_card_mastercard", None).await.json();
        assert_eq!((retried["status"].as_str(), &retried["last_payment_error"]), (Some("succeeded"), &Value::Null));

        let waiting = create_intent(&fake, "").await;
        let no_method = confirm(&fake, &waiting, "", None).await;
        assert_eq!(
            (no_method.status, no_method.json()["error"]["code"].as_str()),
            (400, Some("payment_intent_unexpected_state"))
        );
        let unknown = confirm(&fake, &waiting, "payment_method=pm_nope", None).await;
        let error = &unknown.json()["error"];
        assert_eq!(
            (unknown.status, error["code"].as_str(), error["param"].as_str()),
            (400, Some("resource_missing"), Some("payment_method"))
        );
        let metadata = confirm(&fake, &waiting, "payment_method=pm_card_visa&metadata[a]=b", None).await;
        assert_eq!(metadata.json()["error"]["code"], "parameter_unknown");
        let missing = confirm(&fake, "pi_nope", "payment_method=pm_card_visa", None).await;
        assert_eq!((missing.status, missing.json()["error"]["code"].as_str()), (404, Some("resource_missing")));
        let path = format!("/v1/payment_intents/{waiting}/confirm");
        let denied = call(&fake, "POST", &path, "pk_test_abcd", None, "payment_method=pm_card_visa").await;
        assert_eq!(denied.status, 401);
        assert_eq!(fake.payment_intent(&waiting).unwrap()["status"], "requires_payment_method");
        // Without deliver_webhooks, nothing is sent anywhere.
        assert!(fake.deliveries().is_empty());
    }

    #[tokio::test]
    async fn fakes_stripe_delivers_signed_webhooks() {
        const SECRET: &str = "whsec_vendor_one_0123456789";
        let fake = StripeFake::start().await.expect("start");
        // The first delivery of payment_intent.succeeded is refused: Stripe retries it.
        let (url, mut received) = endpoint(vec![200, 503, 200, 200, 200]).await;
        fake.deliver_webhooks(&url, BTreeMap::from([("vendor-1".to_owned(), SECRET.to_owned())]));
        let mut next = async || {
            let request = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
            let (head, body) = request.expect("a delivery in time").expect("the endpoint is up");
            let event: Value = serde_json::from_slice(&body).expect("a JSON event");
            (head, body, event)
        };

        // Another vendor's intent, without a signing secret here: its events go nowhere.
        let other = create_intent(&fake, "&metadata[bestow_vendor]=vendor-2").await;
        assert_eq!(confirm(&fake, &other, "payment_method=pm_card_visa", None).await.status, 200);

        let id = create_intent(&fake, "&metadata[bestow_vendor]=vendor-1").await;
        assert_eq!(confirm(&fake, &id, "payment_method=pm_card_chargeDeclined", None).await.status, 402);
        let (_, _, failed) = next().await;
        assert_eq!(
            (failed["type"].as_str(), &failed["data"]["object"]["id"]),
            (Some("payment_intent.payment_failed"), &Value::from(id.as_str()))
        );

        assert_eq!(confirm(&fake, &id, "payment_method=pm_card_visa", None).await.status, 200);
        let (_, refused_body, refused) = next().await;
        let (head, body, succeeded) = next().await;
        assert!(head.starts_with("POST /webhooks/stripe/vendor-1 HTTP/1.1\r\n"), "{head}");
        assert_eq!(header(&head, "content-type"), Some("application/json; charset=utf-8"));
        assert_eq!(header(&head, "user-agent"), Some("Stripe/1.0 (+https://stripe.com/docs/webhooks)"));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = header(&head, "stripe-signature");
        assert!(signature.is_some_and(|s| s.starts_with("t=") && s.contains(",v1=")));
        assert!(verify_webhook(&body, signature, SECRET, now).is_ok());
        assert!(verify_webhook(&body, signature, "whsec_someone_else", now).is_err());
        assert_eq!(succeeded["type"], "payment_intent.succeeded");
        assert_eq!(succeeded["data"]["object"], fake.payment_intent(&id).unwrap());
        assert_eq!((refused_body, refused["id"].clone()), (body, succeeded["id"].clone()));

        // A refund that succeeds at once: charge.refunded. A pending one: nothing until it settles.
        let refund = format!("payment_intent={id}&amount=1000&metadata[bestow_vendor]=vendor-1");
        assert_eq!(call(&fake, "POST", "/v1/refunds", KEY, None, &refund).await.status, 200);
        let (_, _, refunded) = next().await;
        assert_eq!(refunded["type"], "charge.refunded");
        assert_eq!(
            (
                refunded["data"]["object"]["amount_refunded"].as_i64(),
                refunded["data"]["object"]["metadata"]["bestow_vendor"].as_str()
            ),
            (Some(1000), Some("vendor-1"))
        );
        fake.set_refund_status("pending");
        let pending = call(&fake, "POST", "/v1/refunds", KEY, None, &refund).await.json();
        let updated = fake.update_refund(pending["id"].as_str().unwrap(), "succeeded").unwrap();
        let (_, _, delivered) = next().await;
        assert_eq!((delivered["type"].as_str(), &delivered["id"]), (Some("refund.updated"), &updated["id"]));

        // Every attempt is recorded, once the endpoint's answer is read.
        let mut deliveries = fake.deliveries();
        for _ in 0..200 {
            if deliveries.len() == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            deliveries = fake.deliveries();
        }
        assert_eq!(deliveries.len(), 5, "{deliveries:?}");
        assert!(deliveries.iter().all(|d| d.url == format!("{url}vendor-1") && d.error.is_none()));
        let of = |event: &Value| {
            let attempts = deliveries.iter().filter(|d| d.event_id == event["id"].as_str().unwrap());
            attempts.map(|d| (d.event_type.as_str(), d.status)).collect::<Vec<_>>()
        };
        assert_eq!(of(&succeeded), [("payment_intent.succeeded", Some(503)), ("payment_intent.succeeded", Some(200))]);
        assert_eq!(of(&failed), [("payment_intent.payment_failed", Some(200))]);
        assert_eq!(of(&refunded), [("charge.refunded", Some(200))]);
        assert_eq!(of(&updated), [("refund.updated", Some(200))]);
    }

    #[tokio::test]
    async fn fakes_stripe_records_unreachable_webhook_endpoints() {
        let fake = StripeFake::start().await.expect("start");
        // A port that was just free: nothing listens there.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("address");
        fake.deliver_webhooks(
            &format!("http://{closed}/hooks/"),
            BTreeMap::from([("v".to_owned(), "whsec_v".to_owned())]),
        );
        let id = create_intent(&fake, "&metadata[bestow_vendor]=v").await;
        let event = fake.succeed_payment(&id).unwrap();
        let mut deliveries = fake.deliveries();
        for _ in 0..200 {
            if !deliveries.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            deliveries = fake.deliveries();
        }
        let first = deliveries.first().expect("an attempt");
        assert_eq!(
            (first.event_id.as_str(), first.url.as_str()),
            (event["id"].as_str().unwrap(), format!("http://{closed}/hooks/v").as_str())
        );
        assert!(first.status.is_none() && first.error.is_some(), "{first:?}");
    }

    /// The platform's own account, which bills the vendors' plans.
    const PLATFORM: &str = "sk_test_platform_51Hx0123456789";
    const OTHER: &str = "sk_test_other_account_0123456789";

    /// The form of a valid subscription Checkout Session for `customer` and `price_basic`, with
    /// parameters `replaced` (an empty value removes one), then `extra` ones.
    fn session_form(customer: &str, replaced: &[(&str, &str)], extra: &str) -> String {
        let base = [
            ("mode", "subscription"),
            ("customer", customer),
            ("line_items[0][price]", "price_basic"),
            ("line_items[0][quantity]", "1"),
            ("success_url", "https://app.example/plans/done?session={CHECKOUT_SESSION_ID}"),
            ("cancel_url", "https://app.example/plans"),
        ];
        let value = |k: &str, v| replaced.iter().find(|(r, _)| *r == k).map_or(v, |(_, v)| *v);
        let pairs = base.into_iter().map(|(k, v)| (k, value(k, v)));
        let form: Vec<String> = pairs.filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={v}")).collect();
        form.join("&") + extra
    }

    /// A new Customer of `key`'s account: its id.
    async fn create_customer(fake: &StripeFake, key: &str) -> String {
        let form = "email=ana%40shop.example&name=Ana+Shop&metadata[bestow_vendor]=vendor-1";
        let created = call(fake, "POST", "/v1/customers", key, None, form).await;
        assert_eq!(created.status, 200, "{}", created.body);
        created.json()["id"].as_str().expect("an id").to_owned()
    }

    /// A new Checkout Session of `key`'s account, for a new Customer: its id.
    async fn create_session(fake: &StripeFake, key: &str, extra: &str) -> String {
        let customer = create_customer(fake, key).await;
        let created =
            call(fake, "POST", "/v1/checkout/sessions", key, None, &session_form(&customer, &[], extra)).await;
        assert_eq!(created.status, 200, "{}", created.body);
        created.json()["id"].as_str().expect("an id").to_owned()
    }

    /// A new active Subscription of `key`'s account, through a completed Checkout: its id.
    async fn subscribe(fake: &StripeFake, key: &str) -> String {
        let session = create_session(fake, key, "").await;
        let events = fake.complete_checkout(&session).expect("an open session");
        events[0]["data"]["object"]["id"].as_str().expect("a subscription").to_owned()
    }

    /// An error answer's (status, type, code, param).
    fn error(answer: &Answer) -> (u16, String, String, String) {
        let error = &answer.json()["error"];
        let text = |key: &str| error[key].as_str().unwrap_or_default().to_owned();
        (answer.status, text("type"), text("code"), text("param"))
    }

    /// The events' types, once checked that their `created` increase strictly.
    fn types(events: &[Value]) -> Vec<&str> {
        let created: Vec<i64> = events.iter().map(|e| e["created"].as_i64().expect("a created")).collect();
        assert!(created.windows(2).all(|w| w[0] < w[1]), "{created:?}");
        events.iter().map(|e| e["type"].as_str().expect("a type")).collect()
    }

    #[tokio::test]
    async fn fakes_stripe_customers_prices_and_checkout_sessions() {
        let fake = StripeFake::start().await.expect("start");
        fake.add_price("price_basic", 1900, "EUR", "month", "Bestow Basic");
        let price = call(&fake, "GET", "/v1/prices/price_basic", PLATFORM, None, "").await.json();
        assert_eq!(
            (price["object"].as_str(), price["unit_amount"].as_i64(), price["currency"].as_str()),
            (Some("price"), Some(1900), Some("eur"))
        );
        assert_eq!((price["recurring"]["interval"].as_str(), price["active"].as_bool()), (Some("month"), Some(true)));
        let product = format!("/v1/products/{}", price["product"].as_str().unwrap());
        assert_eq!(call(&fake, "GET", &product, PLATFORM, None, "").await.json()["name"], "Bestow Basic");
        let no_price = call(&fake, "GET", "/v1/prices/price_nope", PLATFORM, None, "").await;
        assert_eq!(error(&no_price).2, "resource_missing");

        let form = "email=ana%40shop.example&name=Ana+Shop&description=Vendor+one&metadata[bestow_vendor]=vendor-1";
        let created = call(&fake, "POST", "/v1/customers", PLATFORM, None, form).await;
        assert_eq!(created.status, 200, "{}", created.body);
        let customer = created.json();
        let customer_id = customer["id"].as_str().unwrap().to_owned();
        assert!(customer_id.starts_with("cus_") && customer["object"] == "customer");
        assert_eq!(
            (customer["email"].as_str(), customer["name"].as_str(), customer["description"].as_str()),
            (Some("ana@shop.example"), Some("Ana Shop"), Some("Vendor one"))
        );
        assert_eq!(customer["metadata"]["bestow_vendor"], "vendor-1");
        let path = format!("/v1/customers/{customer_id}");
        assert_eq!(call(&fake, "GET", &path, PLATFORM, None, "").await.json(), customer);
        assert_eq!(fake.customers(), std::slice::from_ref(&customer));
        let bad_email = call(&fake, "POST", "/v1/customers", PLATFORM, None, "email=nope").await;
        assert_eq!(error(&bad_email), (400, "invalid_request_error".into(), "email_invalid".into(), "email".into()));
        let unknown = call(&fake, "POST", "/v1/customers", PLATFORM, None, "plan=gold").await;
        assert_eq!(error(&unknown).2, "parameter_unknown");

        let sessions = "/v1/checkout/sessions";
        let create = async |form: String| call(&fake, "POST", sessions, PLATFORM, None, &form).await;
        let refused =
            |code: &str, param: &str| (400, "invalid_request_error".to_owned(), code.to_owned(), param.to_owned());
        let missing_price = create(session_form(&customer_id, &[("line_items[0][price]", "")], "")).await;
        assert_eq!(error(&missing_price), refused("parameter_missing", "line_items[0][price]"));
        let unknown_price = create(session_form(&customer_id, &[("line_items[0][price]", "price_nope")], "")).await;
        assert_eq!(error(&unknown_price), refused("resource_missing", "line_items[0][price]"));
        assert_eq!(unknown_price.json()["error"]["message"], "No such price: 'price_nope'");
        let unknown_param = create(session_form(&customer_id, &[], "&allow_promotion_codes=true")).await;
        assert_eq!(error(&unknown_param), refused("parameter_unknown", "allow_promotion_codes"));
        let unknown_customer = create(session_form("cus_nope", &[], "")).await;
        assert_eq!(error(&unknown_customer), refused("resource_missing", "customer"));
        assert_eq!(unknown_customer.json()["error"]["message"], "No such customer: 'cus_nope'");
        let others = create_customer(&fake, OTHER).await;
        assert_eq!(error(&create(session_form(&others, &[], "")).await), refused("resource_missing", "customer"));
        let no_customer = create(session_form(&customer_id, &[("customer", "")], "")).await;
        assert_eq!(error(&no_customer), refused("parameter_missing", "customer"));
        let payment = create(session_form(&customer_id, &[("mode", "payment")], "")).await;
        assert_eq!(error(&payment), refused("parameter_invalid", "mode"));
        let no_success = create(session_form(&customer_id, &[("success_url", "")], "")).await;
        assert_eq!(error(&no_success), refused("parameter_missing", "success_url"));
        let no_quantity = create(session_form(&customer_id, &[("line_items[0][quantity]", "")], "")).await;
        assert_eq!(error(&no_quantity), refused("parameter_missing", "line_items[0][quantity]"));
        assert!(
            fake.requests()
                .iter()
                .all(|r| r.path != "/v1/checkout/sessions" || r.secret_key.as_deref() == Some(PLATFORM))
        );

        let extra = "&client_reference_id=vendor-1&metadata[bestow_vendor]=vendor-1\
                     &subscription_data[metadata][bestow_vendor]=vendor-1&subscription_data[metadata][plan]=basic";
        let created = create(session_form(&customer_id, &[("line_items[0][quantity]", "2")], extra)).await;
        assert_eq!(created.status, 200, "{}", created.body);
        let session = created.json();
        let id = session["id"].as_str().unwrap();
        assert!(id.starts_with("cs_test_") && session["object"] == "checkout.session");
        assert_eq!(session["url"], format!("{}/checkout/{id}", fake.base_url()));
        assert_eq!(
            (session["status"].as_str(), session["mode"].as_str(), session["payment_status"].as_str()),
            (Some("open"), Some("subscription"), Some("unpaid"))
        );
        assert_eq!(
            (&session["customer"], &session["subscription"]),
            (&Value::from(customer_id.as_str()), &Value::Null)
        );
        assert_eq!(
            (session["client_reference_id"].as_str(), session["amount_total"].as_i64()),
            (Some("vendor-1"), Some(3800))
        );
        assert_eq!(session["metadata"], serde_json::json!({ "bestow_vendor": "vendor-1" }));
        assert_eq!(session["expires_at"].as_i64().unwrap() - session["created"].as_i64().unwrap(), 24 * 3600);
        let path = format!("/v1/checkout/sessions/{id}");
        assert_eq!(call(&fake, "GET", &path, PLATFORM, None, "").await.json(), session);
        assert_eq!(fake.checkout_session(id).unwrap(), session);
        let page = call(&fake, "GET", &format!("/checkout/{id}"), PLATFORM, None, "").await;
        assert_eq!(page.status, 200);
        assert!(page.headers.contains("content-type: text/html") && page.body.contains(id));
        assert_eq!(call(&fake, "GET", "/checkout/cs_test_nope", PLATFORM, None, "").await.status, 404);

        // Another account sees none of them.
        let missing = call(&fake, "GET", &path, OTHER, None, "").await;
        assert_eq!(error(&missing), (404, "invalid_request_error".into(), "resource_missing".into(), "session".into()));
        let customer_path = format!("/v1/customers/{customer_id}");
        assert_eq!(error(&call(&fake, "GET", &customer_path, OTHER, None, "").await).0, 404);
    }

    #[tokio::test]
    async fn fakes_stripe_subscription_checkout_renewals_and_retries() {
        let fake = StripeFake::start().await.expect("start");
        fake.add_price("price_basic", 1900, "eur", "month", "Bestow Basic");
        let extra = "&subscription_data[metadata][bestow_vendor]=vendor-1&subscription_data[metadata][plan]=basic";
        let session = create_session(&fake, PLATFORM, extra).await;
        let events = fake.complete_checkout(&session).expect("an open session");
        assert_eq!(
            types(&events),
            [
                "customer.subscription.created",
                "invoice.created",
                "invoice.finalized",
                "invoice.paid",
                "invoice.payment_succeeded",
                "checkout.session.completed"
            ]
        );
        assert!(fake.complete_checkout(&session).is_none());
        let invoice_states: Vec<&Value> = events[1..5].iter().map(|e| &e["data"]["object"]["status"]).collect();
        assert_eq!(invoice_states, ["draft", "open", "paid", "paid"]);
        let completed = &events[5]["data"]["object"];
        assert_eq!(
            (completed["status"].as_str(), completed["payment_status"].as_str()),
            (Some("complete"), Some("paid"))
        );
        assert_eq!(fake.checkout_session(&session).as_ref(), Some(completed));
        let sub_id = completed["subscription"].as_str().unwrap();
        let subscription = call(&fake, "GET", &format!("/v1/subscriptions/{sub_id}"), PLATFORM, None, "").await.json();
        assert_eq!(fake.subscription(sub_id).unwrap(), subscription);
        assert!(sub_id.starts_with("sub_") && subscription["object"] == "subscription");
        assert_eq!(
            (subscription["status"].as_str(), &subscription["customer"]),
            (Some("active"), &completed["customer"])
        );
        assert_eq!(subscription["items"]["data"][0]["price"]["id"], "price_basic");
        assert_eq!(subscription["metadata"], serde_json::json!({ "bestow_vendor": "vendor-1", "plan": "basic" }));
        let (start, end) = (
            subscription["current_period_start"].as_i64().unwrap(),
            subscription["current_period_end"].as_i64().unwrap(),
        );
        assert_eq!(end - start, 30 * 86_400);
        assert_eq!(
            (subscription["cancel_at_period_end"].as_bool(), &subscription["canceled_at"]),
            (Some(false), &Value::Null)
        );
        let first = subscription["latest_invoice"].as_str().unwrap();
        assert_eq!(completed["invoice"], first);
        let invoice = call(&fake, "GET", &format!("/v1/invoices/{first}"), PLATFORM, None, "").await.json();
        assert_eq!(invoice, events[4]["data"]["object"]);
        assert_eq!(
            (invoice["status"].as_str(), invoice["billing_reason"].as_str(), invoice["subscription"].as_str()),
            (Some("paid"), Some("subscription_create"), Some(sub_id))
        );
        assert_eq!(
            (invoice["amount_due"].as_i64(), invoice["amount_paid"].as_i64(), invoice["amount_remaining"].as_i64()),
            (Some(1900), Some(1900), Some(0))
        );
        assert_eq!(
            (invoice["lines"]["data"][0]["amount"].as_i64(), invoice["lines"]["data"][0]["period"]["end"].as_i64()),
            (Some(1900), Some(end))
        );
        assert_eq!(invoice["subscription_details"]["metadata"]["plan"], "basic");
        let hosted = invoice["hosted_invoice_url"].as_str().unwrap();
        assert_eq!(hosted, format!("{}/invoice/{first}", fake.base_url()));
        assert_eq!(call(&fake, "GET", &format!("/invoice/{first}"), PLATFORM, None, "").await.status, 200);

        // A period paid: the next one starts where it ended.
        let renewed = fake.renew_subscription(sub_id, true).unwrap();
        assert_eq!(
            types(&renewed),
            [
                "invoice.created",
                "invoice.finalized",
                "invoice.paid",
                "invoice.payment_succeeded",
                "customer.subscription.updated"
            ]
        );
        assert!(renewed[0]["created"].as_i64() > events[5]["created"].as_i64());
        let cycle = &renewed[3]["data"]["object"];
        let second = cycle["id"].as_str().unwrap();
        assert_eq!(
            (cycle["billing_reason"].as_str(), cycle["status"].as_str()),
            (Some("subscription_cycle"), Some("paid"))
        );
        assert_eq!((cycle["period_start"].as_i64(), cycle["period_end"].as_i64()), (Some(start), Some(end)));
        assert_eq!(cycle["lines"]["data"][0]["period"], serde_json::json!({ "start": end, "end": end + 30 * 86_400 }));
        let updated = &renewed[4]["data"];
        assert_eq!(
            (updated["object"]["current_period_start"].as_i64(), updated["object"]["latest_invoice"].as_str()),
            (Some(end), Some(second))
        );
        assert_eq!(
            updated["previous_attributes"],
            serde_json::json!({ "current_period_start": start, "current_period_end": end, "latest_invoice": first })
        );

        // A period unpaid: past_due until a retry succeeds.
        let failed = fake.renew_subscription(sub_id, false).unwrap();
        assert_eq!(
            types(&failed),
            ["invoice.created", "invoice.finalized", "invoice.payment_failed", "customer.subscription.updated"]
        );
        let open = &failed[2]["data"]["object"];
        let third = open["id"].as_str().unwrap();
        assert_eq!(
            (open["status"].as_str(), open["attempt_count"].as_i64(), open["amount_remaining"].as_i64()),
            (Some("open"), Some(1), Some(1900))
        );
        assert!(open["next_payment_attempt"].as_i64() > open["created"].as_i64());
        assert_eq!(failed[3]["data"]["object"]["status"], "past_due");
        assert_eq!(failed[3]["data"]["previous_attributes"]["status"], "active");
        assert_eq!(fake.subscription(sub_id).unwrap()["status"], "past_due");
        assert!(fake.pay_open_invoice(second).is_none());
        let paid = fake.pay_open_invoice(third).unwrap();
        assert_eq!(types(&paid), ["invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]);
        assert_eq!(
            (paid[0]["data"]["object"]["attempt_count"].as_i64(), &paid[0]["data"]["object"]["next_payment_attempt"]),
            (Some(2), &Value::Null)
        );
        assert_eq!(paid[2]["data"]["previous_attributes"], serde_json::json!({ "status": "past_due" }));
        assert_eq!(fake.subscription(sub_id).unwrap()["status"], "active");
        let invoices = fake.invoices_of(sub_id);
        assert_eq!(invoices.iter().map(|i| i["id"].as_str().unwrap()).collect::<Vec<_>>(), [first, second, third]);
        assert!(invoices.iter().all(|i| i["status"] == "paid"));

        // Retries exhausted: unpaid, then canceled.
        assert_eq!(types(&fake.renew_subscription(sub_id, false).unwrap())[3], "customer.subscription.updated");
        let unpaid = fake.set_subscription_status(sub_id, "unpaid").unwrap();
        assert_eq!(types(&unpaid), ["customer.subscription.updated"]);
        assert_eq!(unpaid[0]["data"]["previous_attributes"], serde_json::json!({ "status": "past_due" }));
        assert_eq!(fake.set_subscription_status(sub_id, "unpaid"), Some(Vec::new()));
        let canceled = fake.set_subscription_status(sub_id, "canceled").unwrap();
        assert_eq!(types(&canceled), ["customer.subscription.deleted"]);
        let ended = &canceled[0]["data"]["object"];
        assert_eq!(ended["status"], "canceled");
        assert!(ended["canceled_at"].is_i64() && ended["ended_at"].is_i64());
        assert!(fake.renew_subscription(sub_id, true).is_none());
        assert!(fake.set_subscription_status(sub_id, "active").is_none());
        assert!(fake.deliveries().is_empty());
    }

    #[tokio::test]
    async fn fakes_stripe_subscription_updates_cancels_and_other_accounts() {
        let fake = StripeFake::start().await.expect("start");
        fake.add_price("price_basic", 9900, "usd", "year", "Bestow Pro");
        let sub_id = subscribe(&fake, PLATFORM).await;
        let subscription = fake.subscription(&sub_id).unwrap();
        let end = subscription["current_period_end"].as_i64().unwrap();
        assert_eq!(end - subscription["current_period_start"].as_i64().unwrap(), 365 * 86_400);
        let path = format!("/v1/subscriptions/{sub_id}");

        // Another account's objects are missing, whatever the call.
        for (method, path) in [
            ("GET", path.clone()),
            ("POST", path.clone()),
            ("DELETE", path.clone()),
            ("GET", format!("/v1/invoices/{}", subscription["latest_invoice"].as_str().unwrap())),
            ("GET", format!("/v1/customers/{}", subscription["customer"].as_str().unwrap())),
        ] {
            let missing = call(&fake, method, &path, OTHER, None, "").await;
            assert_eq!((missing.status, error(&missing).2), (404, "resource_missing".to_owned()), "{method} {path}");
        }
        assert_eq!(error(&call(&fake, "GET", &path, OTHER, None, "").await).3, "id");
        assert_eq!(fake.subscription(&sub_id).unwrap(), subscription);

        let update = async |form: &str| call(&fake, "POST", &path, PLATFORM, None, form).await;
        assert_eq!(error(&update("cancel_at_period_end=yes").await).3, "cancel_at_period_end");
        assert_eq!(error(&update("proration_behavior=none").await).2, "parameter_unknown");
        let cancelling = update("cancel_at_period_end=true&cancellation_details[feedback]=too_expensive").await.json();
        assert_eq!(
            (cancelling["cancel_at_period_end"].as_bool(), cancelling["cancel_at"].as_i64()),
            (Some(true), Some(end))
        );
        assert_eq!(cancelling["status"], "active");
        assert!(cancelling["canceled_at"].is_i64());
        assert_eq!(
            cancelling["cancellation_details"],
            serde_json::json!({ "comment": null, "feedback": "too_expensive", "reason": "cancellation_requested" })
        );
        let resumed = update("cancel_at_period_end=false&metadata[note]=stays").await.json();
        assert_eq!((resumed["cancel_at_period_end"].as_bool(), &resumed["cancel_at"]), (Some(false), &Value::Null));
        assert_eq!(resumed["metadata"]["note"], "stays");
        assert_eq!(fake.subscription(&sub_id).unwrap(), resumed);

        // DELETE cancels now; parameters may come in the query string.
        let query = format!("{path}?cancellation_details%5Bcomment%5D=Closing+the+shop&invoice_now=false");
        let deleted = call(&fake, "DELETE", &query, PLATFORM, None, "").await;
        assert_eq!(deleted.status, 200, "{}", deleted.body);
        let deleted = deleted.json();
        assert_eq!(deleted["status"], "canceled");
        assert!(deleted["ended_at"].is_i64() && deleted["canceled_at"].is_i64());
        assert_eq!(deleted["cancellation_details"]["comment"], "Closing the shop");
        assert_eq!(fake.subscription(&sub_id).unwrap(), deleted);
        let again = call(&fake, "DELETE", &path, PLATFORM, None, "").await;
        assert_eq!(error(&again), (404, "invalid_request_error".into(), "resource_missing".into(), "id".into()));
        let refused = update("cancel_at_period_end=true").await;
        assert_eq!(refused.status, 400);
        assert_eq!(
            refused.json()["error"]["message"],
            "A canceled subscription can only update its cancellation_details and metadata."
        );
        assert!(fake.renew_subscription(&sub_id, true).is_none());

        // A subscription set to cancel at period end ends when the period does.
        let ending = subscribe(&fake, PLATFORM).await;
        let flagged =
            call(&fake, "POST", &format!("/v1/subscriptions/{ending}"), PLATFORM, None, "cancel_at_period_end=true")
                .await;
        assert_eq!(flagged.status, 200);
        let period_end = flagged.json()["current_period_end"].clone();
        let ended = fake.renew_subscription(&ending, true).unwrap();
        assert_eq!(types(&ended), ["customer.subscription.deleted"]);
        assert_eq!(
            (&ended[0]["data"]["object"]["status"], &ended[0]["data"]["object"]["ended_at"]),
            (&Value::from("canceled"), &period_end)
        );
        assert_eq!(fake.invoices_of(&ending).len(), 1);
    }

    #[tokio::test]
    async fn fakes_stripe_delivers_platform_webhooks() {
        const SECRET: &str = "whsec_platform_0123456789";
        let fake = StripeFake::start().await.expect("start");
        fake.add_price("price_basic", 1900, "eur", "month", "Bestow Basic");
        // Seven events, the first delivery attempt refused: eight requests.
        let (url, mut received) = endpoint(vec![503, 200, 200, 200, 200, 200, 200, 200]).await;
        // The vendor's endpoint on the same server: billing events never go there, metadata or not.
        fake.deliver_webhooks(&url, BTreeMap::from([("vendor-1".to_owned(), "whsec_vendor".to_owned())]));
        fake.deliver_platform_webhooks(&url, SECRET, PLATFORM);
        // Another account's billing events go nowhere.
        let elsewhere = create_session(&fake, OTHER, "&subscription_data[metadata][bestow_vendor]=vendor-1").await;
        let unsent = fake.complete_checkout(&elsewhere).unwrap();

        let session = create_session(&fake, PLATFORM, "&subscription_data[metadata][bestow_vendor]=vendor-1").await;
        let events = fake.complete_checkout(&session).unwrap();
        let sub_id = events[0]["data"]["object"]["id"].as_str().unwrap();
        let deleted = call(&fake, "DELETE", &format!("/v1/subscriptions/{sub_id}"), PLATFORM, None, "").await;
        assert_eq!(deleted.status, 200);

        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut arrived: BTreeMap<String, Value> = BTreeMap::new();
        for _ in 0..8 {
            let request = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
            let (head, body) = request.expect("a delivery in time").expect("the endpoint is up");
            assert!(head.starts_with("POST /webhooks/stripe/ HTTP/1.1\r\n"), "{head}");
            assert_eq!(header(&head, "user-agent"), Some("Stripe/1.0 (+https://stripe.com/docs/webhooks)"));
            let signature = header(&head, "stripe-signature");
            assert!(verify_webhook(&body, signature, SECRET, now).is_ok());
            assert!(verify_webhook(&body, signature, "whsec_vendor", now).is_err());
            let event: Value = serde_json::from_slice(&body).expect("a JSON event");
            arrived.insert(event["id"].as_str().unwrap().to_owned(), event);
        }
        assert_eq!(arrived.len(), 7);
        for event in &events {
            assert_eq!(arrived.get(event["id"].as_str().unwrap()), Some(event));
        }
        let last = arrived.values().find(|e| !events.contains(e)).expect("the deletion's event");
        assert_eq!(
            (last["type"].as_str(), &last["data"]["object"]["id"]),
            (Some("customer.subscription.deleted"), &Value::from(sub_id))
        );

        let mut deliveries = fake.deliveries();
        for _ in 0..200 {
            if deliveries.len() == 8 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            deliveries = fake.deliveries();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let deliveries = fake.deliveries();
        assert_eq!(deliveries.len(), 8, "{deliveries:?}");
        assert!(deliveries.iter().all(|d| d.url == url && !unsent.iter().any(|e| e["id"] == d.event_id.as_str())));
        let refused = deliveries.iter().find(|d| d.status == Some(503)).expect("the refused attempt");
        let attempts = deliveries.iter().filter(|d| d.event_id == refused.event_id).map(|d| d.status);
        assert_eq!(attempts.collect::<Vec<_>>(), [Some(503), Some(200)]);
    }
}
