//! A local HTTP fake of the Stripe API (<https://docs.stripe.com/api>): PaymentIntents and
//! Refunds over form-encoded requests, with Stripe's JSON shapes, errors, API-key check and
//! idempotency keys. What Stripe does asynchronously (a customer paying, a refund settling)
//! the test triggers itself, and gets the Event that Stripe's webhook would carry.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const API_VERSION: &str = "2024-06-20";

/// A running fake: serves on a loopback port until dropped.
pub struct StripeFake {
    base_url: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<std::io::Result<()>>,
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
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: String) -> Self {
        Self { status, kind, code: None, param: None, message, saved: true }
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
        Ok(StripeFake { base_url, state, server })
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
    /// Event again, unchanged.
    pub fn succeed_payment(&self, pi_id: &str) -> Option<Value> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let intent = state.intents.iter_mut().find(|i| i["id"] == pi_id)?;
        if intent["status"] != "succeeded" {
            let payment_method = stripe_id("pm_1");
            let charge = charge(intent, "succeeded", &payment_method);
            intent["status"] = json!("succeeded");
            intent["amount_received"] = intent["amount"].clone();
            intent["latest_charge"] = charge["id"].clone();
            intent["payment_method"] = json!(payment_method);
            intent["last_payment_error"] = Value::Null;
            state.charges.push(charge);
        }
        Some(self.event("payment_intent.succeeded", intent.clone()))
    }

    /// Marks it failed (last_payment_error with a card_declined decline, and a failed charge)
    /// and returns `payment_intent.payment_failed`. None if unknown or already succeeded.
    pub fn fail_payment(&self, pi_id: &str) -> Option<Value> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let intent = state.intents.iter_mut().find(|i| i["id"] == pi_id && i["status"] != "succeeded")?;
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
        state.charges.push(charge);
        Some(self.event("payment_intent.payment_failed", intent.clone()))
    }

    /// Sets a refund's status (e.g. pending → succeeded or failed) and returns the
    /// `refund.updated` Event JSON.
    pub fn update_refund(&self, refund_id: &str, status: &str) -> Option<Value> {
        let mut state = self.lock();
        let refund = state.refunds.iter_mut().find(|r| r["id"] == refund_id)?;
        refund["status"] = json!(status);
        if status == "failed" {
            refund["failure_reason"] = json!("unknown");
        }
        Some(self.event("refund.updated", refund.clone()))
    }

    /// The `charge.refunded` Event for a PaymentIntent's charge, as it stands now
    /// (amount_refunded = sum of succeeded refunds, refunded = fully refunded).
    pub fn charge_refunded_event(&self, pi_id: &str) -> Option<Value> {
        let mut state = self.lock();
        let charge_id = state.intents.iter().find(|i| i["id"] == pi_id)?["latest_charge"].as_str()?.to_owned();
        let refunded = refunded_sum(&state.refunds, pi_id, |status| status == "succeeded");
        let charge = state.charges.iter_mut().find(|c| c["id"] == charge_id.as_str() && c["status"] == "succeeded")?;
        charge["amount_refunded"] = json!(refunded);
        charge["refunded"] = json!(refunded >= charge["amount"].as_i64().unwrap_or(0));
        Some(self.event("charge.refunded", charge.clone()))
    }

    /// A realistic Event envelope around any object.
    pub fn event(&self, event_type: &str, object: Value) -> Value {
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
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
    let (status, body, replayed) = state.lock().unwrap_or_else(|p| p.into_inner()).serve(request);
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
        Ok(refund)
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
}
