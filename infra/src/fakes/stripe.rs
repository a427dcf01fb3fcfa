//! A local HTTP fake of the Stripe API (<https://docs.stripe.com/api>): PaymentIntents and
//! Refunds over form-encoded requests, with Stripe's JSON shapes, errors, API-key check and
//! idempotency keys. A PaymentIntent is paid as Stripe.js pays it, by confirming it with one of
//! Stripe's test payment methods (`pm_card_visa`, `pm_card_chargeDeclined`, …); what Stripe does
//! on its own (a refund settling) the test triggers itself. Each helper returns the Event that
//! Stripe's webhook would carry; after [`StripeFake::deliver_webhooks`], the fake also POSTs
//! its events to the vendor's endpoint, signed, as Stripe does.

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

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The API key of the `Authorization` header (Bearer, or Basic with the key as user).
    pub secret_key: Option<String>,
    /// The form body (the query string for a GET), decoded, in order.
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
        let state = Arc::new(Mutex::new(State { refund_status: "succeeded".to_owned(), ..State::default() }));
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
    let form = match parts.method {
        http::Method::GET => parse_form(parts.uri.query().unwrap_or("")),
        _ => parse_form(&String::from_utf8_lossy(&body)),
    };
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
        let scope = req.idempotency_key.clone().filter(|_| req.method == "POST").map(|k| (key, k));
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
        let (status, body, saved) = match self.route(&req) {
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

    fn route(&mut self, req: &RecordedRequest) -> Result<Value, ApiError> {
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
        let automatic = match param(form, "automatic_payment_methods[enabled]") {
            None => Value::Null,
            Some(flag @ ("true" | "false")) => json!({ "enabled": flag == "true" }),
            Some(other) => {
                return Err(ApiError::invalid(
                    "automatic_payment_methods[enabled]",
                    None,
                    format!("Invalid boolean: {other}"),
                ));
            }
        };
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

    /// Creates an Event around `object` and, when webhooks are delivered and the object's
    /// vendor has a signing secret, queues it for that vendor's endpoint.
    fn emit(&mut self, event_type: &str, object: Value) -> Value {
        let event = event(event_type, object);
        if let Some(webhooks) = &self.webhooks
            && let Some(vendor) = event["data"]["object"]["metadata"]["bestow_vendor"].as_str()
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
    let entries = form.iter().filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?, v)));
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
}
