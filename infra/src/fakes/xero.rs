//! A local HTTP fake of Xero (<https://developer.xero.com/documentation/api/accounting/overview>)
//! for one organisation: Xero Identity's OAuth 2.0 authorization-code grant with rotating
//! refresh tokens (`POST /connect/token`), the connections list (`GET /connections`) and the
//! part of the Accounting API the Bestow client uses (`/api.xro/2.0/`: Invoices, their
//! Attachments, Payments), with Xero's PascalCase JSON, validation errors, `Idempotency-Key`
//! replays and per-tenant rate limits. Identity and API share one port: use
//! [`XeroFake::base_url`] as both bases. The consent screen is skipped: [`XeroFake::authorize`]
//! hands out the code Xero would redirect with. What a Xero user does on their own (voiding an
//! invoice) the test does with the helpers, then sends the signed webhook Xero would send
//! ([`XeroFake::send_invoice_event`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use rand::Rng;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The scopes every token grants.
const SCOPE: &str =
    "openid profile email accounting.transactions accounting.contacts accounting.attachments offline_access";
/// The organisation's name, as `GET /connections` answers it.
const TENANT_NAME: &str = "Bestow Platform Ltd";
/// The organisation's base currency: the `CurrencyCode` of invoices that give none.
const BASE_CURRENCY: &str = "EUR";
/// The `ProviderName` of API answers (the name of the app registered with Xero).
const PROVIDER_NAME: &str = "Bestow";
/// The `kid` of the fake's JWTs (their signatures are random: nothing verifies them).
const KEY_ID: &str = "1CAF8E66772D6DC028D6726FD0261581570EFC19";
/// Xero's default access-token lifetime (30 minutes) and refresh-token reuse grace (30 minutes).
const ACCESS_TOKEN_LIFETIME: u64 = 1800;
const REFRESH_GRACE: Duration = Duration::from_secs(30 * 60);
/// Xero's per-tenant limits: calls per rolling minute (configurable), per rolling day, in
/// progress at once; and the app's calls per minute across tenants.
const MINUTE_LIMIT: usize = 60;
const DAY_LIMIT: usize = 5000;
const CONCURRENT_LIMIT: usize = 5;
const APP_MINUTE_LIMIT: usize = 10_000;
const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest `Idempotency-Key` Xero takes.
const MAX_IDEMPOTENCY_KEY: usize = 128;
/// The largest attachment Xero takes (25 MB).
const MAX_ATTACHMENT: usize = 25 * 1024 * 1024;
/// The organisation's chart of accounts: (code, name, type). Invoice lines take any account but
/// the bank accounts and the two system accounts (receivable, payable); payments go to a bank
/// account.
const ACCOUNTS: [(&str, &str, &str); 10] = [
    ("090", "Business Bank Account", "BANK"),
    ("091", "Business Savings Account", "BANK"),
    ("200", "Sales", "REVENUE"),
    ("260", "Other Revenue", "REVENUE"),
    ("270", "Interest Income", "REVENUE"),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS"),
    ("404", "Bank Fees", "EXPENSE"),
    ("429", "General Expenses", "EXPENSE"),
    ("610", "Accounts Receivable", "CURRENT"),
    ("800", "Accounts Payable", "CURRLIAB"),
];

/// A running fake: serves on a loopback port until dropped.
pub struct XeroFake {
    base_url: String,
    tenant_id: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<std::io::Result<()>>,
}

/// One request as the fake received it (identity and API alike), with its answer's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Without the query string.
    pub path: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `xero-tenant-id` header.
    pub tenant_id: Option<String>,
    pub status: u16,
}

struct State {
    client_id: String,
    client_secret: String,
    org: Organisation,
    /// The user who consents, as the tokens name them.
    user_id: String,
    subject: String,
    /// Authorization codes not yet exchanged.
    codes: HashMap<String, Code>,
    grants: Vec<Grant>,
    access_lifetime: u64,
    refresh_grace: Duration,
    token_calls: usize,
    refresh_calls: usize,
    requests: Vec<RecordedRequest>,
    failures: VecDeque<Failure>,
    minute_limit: usize,
    /// When each API call admitted in the last day was made, oldest first.
    calls: VecDeque<Instant>,
    in_flight: usize,
    response_delay: Duration,
    /// (tenant id, key) → the first answer.
    idempotent: HashMap<(String, String), Saved>,
    /// (id, code, name, type) of the chart of accounts.
    accounts: Vec<(String, &'static str, &'static str, &'static str)>,
    contacts: Vec<Value>,
    invoices: Vec<Value>,
    /// Invoice id → its attachments, in upload order.
    attachments: HashMap<String, Vec<Attachment>>,
    payments: Vec<Value>,
    next_invoice_number: u32,
    event_sequence: u64,
}

struct Organisation {
    tenant_id: String,
    /// The connection's `id` (what `DELETE /connections/{id}` would take).
    connection_id: String,
    /// The latest consent: its auth event id, and when the connection was made and updated.
    auth_event_id: Option<String>,
    created: Option<OffsetDateTime>,
    updated: Option<OffsetDateTime>,
}

struct Code {
    redirect_uri: String,
    auth_event_id: String,
}

/// One consent's tokens: the current pair, and the refresh token it replaced, reusable for the
/// grace period after it was used.
struct Grant {
    auth_event_id: String,
    access: String,
    access_expires: Instant,
    access_expires_utc: OffsetDateTime,
    refresh: String,
    previous: Option<(String, Instant)>,
}

/// An injected failure: its status, and whether the request is applied first (a lost answer).
struct Failure {
    status: u16,
    applied: bool,
}

struct Saved {
    method: String,
    path: String,
    status: u16,
    body: String,
}

struct Attachment {
    id: String,
    file_name: String,
    mime: String,
    bytes: Vec<u8>,
}

/// A request, read whole.
struct Received {
    method: String,
    path: String,
    query: String,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
    }
}

/// An HTTP answer.
struct Answer {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// Counted against the rate limits: in progress until the answer is sent.
    admitted: bool,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Answer {
        Answer::text(status, body.to_string())
    }

    fn text(status: u16, body: String) -> Answer {
        Answer { status, content_type: "application/json; charset=utf-8", headers: Vec::new(), body, admitted: false }
    }

    /// Xero's problem-details error (401, 403, 404, 429, 5xx).
    fn problem(status: u16, title: &str, detail: &str) -> Answer {
        let body = json!({
            "Type": null,
            "Title": title,
            "Status": status,
            "Detail": detail,
            "Instance": uuid(),
            "Extensions": {},
        });
        Answer::json(status, &body)
    }

    /// An OAuth error of the token endpoint.
    fn oauth(status: u16, error: &str) -> Answer {
        Answer::json(status, &json!({ "error": error }))
    }

    /// Xero's 400 for elements that failed validation, each with its `ValidationErrors`.
    fn validation(elements: Vec<Value>) -> Answer {
        let body = json!({
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": elements,
        });
        Answer::json(400, &body)
    }

    /// Xero's 400 for a body it cannot read.
    fn post_data_invalid(detail: &str) -> Answer {
        let body = json!({
            "ErrorNumber": 14,
            "Type": "PostDataInvalidException",
            "Message": format!("JSON for post data was invalid,{detail}"),
        });
        Answer::json(400, &body)
    }

    fn not_found() -> Answer {
        Answer::problem(404, "Not Found", "The resource you're looking for cannot be found")
    }
}

/// Keeps an admitted API call counted as in progress until its answer is sent (or the client
/// went away).
struct InFlight(Arc<Mutex<State>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

impl XeroFake {
    /// Binds 127.0.0.1:0 and serves until dropped, as Xero for the app with this client id and
    /// secret, with one organisation.
    pub async fn start(client_id: &str, client_secret: &str) -> std::io::Result<XeroFake> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let tenant_id = uuid();
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            org: Organisation {
                tenant_id: tenant_id.clone(),
                connection_id: uuid(),
                auth_event_id: None,
                created: None,
                updated: None,
            },
            user_id: uuid(),
            subject: hex(&rand::rng().random::<[u8; 16]>()),
            codes: HashMap::new(),
            grants: Vec::new(),
            access_lifetime: ACCESS_TOKEN_LIFETIME,
            refresh_grace: REFRESH_GRACE,
            token_calls: 0,
            refresh_calls: 0,
            requests: Vec::new(),
            failures: VecDeque::new(),
            minute_limit: MINUTE_LIMIT,
            calls: VecDeque::new(),
            in_flight: 0,
            response_delay: Duration::ZERO,
            idempotent: HashMap::new(),
            accounts: ACCOUNTS.iter().map(|(code, name, kind)| (uuid(), *code, *name, *kind)).collect(),
            contacts: Vec::new(),
            invoices: Vec::new(),
            attachments: HashMap::new(),
            payments: Vec::new(),
            next_invoice_number: 1,
            event_sequence: 0,
        }));
        let shared = Arc::clone(&state);
        let handler = move |req| handle(Arc::clone(&shared), req);
        let server = tokio::spawn(crate::loopback::serve(listener, Arc::new(handler)));
        Ok(XeroFake { base_url, tenant_id, state, server })
    }

    /// The fake's root, e.g. `http://127.0.0.1:PORT` (no trailing slash): the identity base
    /// (`{base_url}/connect/token`), the connections base (`{base_url}/connections`) and the API
    /// base (`{base_url}/api.xro/2.0/…`) at once.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The organisation's tenant id (the `xero-tenant-id` header the API wants).
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The user consents on Xero's screen: a new single-use authorization code for
    /// `redirect_uri`, as Xero would add to it. Connects the organisation (or renews its
    /// connection, with a new `authEventId`).
    pub fn authorize(&self, redirect_uri: &str) -> String {
        self.lock().issue_code(redirect_uri)
    }

    /// How long a used refresh token stays reusable (Xero: 30 minutes); zero: not at all.
    pub fn set_refresh_grace(&self, grace: Duration) {
        self.lock().refresh_grace = grace;
    }

    /// The `expires_in` of access tokens issued from now on (Xero: 1800); 0 makes them expire
    /// at once.
    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.lock().access_lifetime = secs;
    }

    /// The calls per rolling minute the organisation takes (Xero: 60).
    pub fn set_minute_limit(&self, calls: usize) {
        self.lock().minute_limit = calls;
    }

    /// Holds every admitted API answer this long, while it counts as in progress (towards the
    /// limit of 5 concurrent calls).
    pub fn set_response_delay(&self, delay: Duration) {
        self.lock().response_delay = delay;
    }

    /// The next `n` API requests (not identity ones) get this status before anything is applied
    /// or counted: 429 with `Retry-After: 1` and `X-Rate-Limit-Problem: minute`, 5xx and others
    /// with a Xero error body.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().failures.extend((0..n).map(|_| Failure { status, applied: false }));
    }

    /// The next `n` admitted API requests are applied (an invoice created, the answer saved
    /// under its idempotency key) but answered this status instead: a lost answer.
    pub fn fail_next_after_apply(&self, n: usize, status: u16) {
        self.lock().failures.extend((0..n).map(|_| Failure { status, applied: true }));
    }

    /// Every request received, in order (identity and API, refused and injected ones included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// How many requests reached `POST /connect/token` (refused ones included).
    pub fn token_calls(&self) -> usize {
        self.lock().token_calls
    }

    /// How many of those were `grant_type=refresh_token` (refused ones included).
    pub fn refresh_calls(&self) -> usize {
        self.lock().refresh_calls
    }

    /// Whether the API would take this access token now.
    pub fn access_token_valid(&self, token: &str) -> bool {
        self.lock().authenticate(Some(&format!("Bearer {token}"))).is_ok()
    }

    /// Every invoice, in creation order, as `GET /Invoices/{id}` answers it.
    pub fn invoices(&self) -> Vec<Value> {
        self.lock().invoices.clone()
    }

    /// An invoice by `InvoiceID` or `InvoiceNumber`.
    pub fn invoice(&self, id: &str) -> Option<Value> {
        let state = self.lock();
        state.invoice_index(id).map(|i| state.invoices[i].clone())
    }

    /// Every contact, in creation order.
    pub fn contacts(&self) -> Vec<Value> {
        self.lock().contacts.clone()
    }

    /// An invoice's attachments, in upload order: (file name, MIME type, bytes).
    pub fn attachments(&self, invoice_id: &str) -> Vec<(String, String, Vec<u8>)> {
        let state = self.lock();
        let id = state.invoice_index(invoice_id).and_then(|i| state.invoices[i]["InvoiceID"].as_str());
        let attachments = id.and_then(|id| state.attachments.get(id)).into_iter().flatten();
        attachments.map(|a| (a.file_name.clone(), a.mime.clone(), a.bytes.clone())).collect()
    }

    /// Every payment, in order, as `PUT /Payments` answered it.
    pub fn payments(&self) -> Vec<Value> {
        self.lock().payments.clone()
    }

    /// A Xero user voids an approved invoice (`AUTHORISED` or `SUBMITTED`, without payments):
    /// false if unknown or not voidable.
    pub fn void_invoice(&self, id: &str) -> bool {
        let mut state = self.lock();
        let Some(i) = state.invoice_index(id) else { return false };
        let invoice = &mut state.invoices[i];
        let voidable = invoice["Status"] == "AUTHORISED" || invoice["Status"] == "SUBMITTED";
        if !voidable || cents(&invoice["AmountPaid"]) != 0 {
            return false;
        }
        invoice["Status"] = json!("VOIDED");
        invoice["UpdatedDateUTC"] = json!(ms_date(OffsetDateTime::now_utc()));
        true
    }

    /// Sets an invoice's `Status` to anything, without Xero's checks: false if unknown.
    pub fn set_invoice_status(&self, id: &str, status: &str) -> bool {
        let mut state = self.lock();
        let Some(i) = state.invoice_index(id) else { return false };
        state.invoices[i]["Status"] = json!(status);
        state.invoices[i]["UpdatedDateUTC"] = json!(ms_date(OffsetDateTime::now_utc()));
        true
    }

    /// POSTs the webhook Xero sends when an invoice changes (one `INVOICE` / `UPDATE` event of
    /// the organisation, the next sequence number), signed with `webhook_key`: the endpoint's
    /// status, or why there was none. The invoice need not exist.
    pub async fn send_invoice_event(&self, url: &str, webhook_key: &str, invoice_id: &str) -> Result<u16, String> {
        let body = {
            let mut state = self.lock();
            state.event_sequence += 1;
            let event = json!({
                "resourceUrl": format!("https://api.xero.com/api.xro/2.0/Invoices/{invoice_id}"),
                "resourceId": invoice_id,
                "eventDateUtc": event_time(OffsetDateTime::now_utc()),
                "eventType": "UPDATE",
                "eventCategory": "INVOICE",
                "tenantId": state.org.tenant_id,
                "tenantType": "ORGANISATION",
            });
            webhook_body(vec![event], state.event_sequence)
        };
        deliver(url, &signature(&body, webhook_key), &body).await
    }

    /// POSTs Xero's "intent to receive" check (no events), signed with `webhook_key` or, if not
    /// `valid_signature`, with another key: Xero wants 200 for the first and 401 for the second.
    pub async fn send_intent_to_receive(
        &self,
        url: &str,
        webhook_key: &str,
        valid_signature: bool,
    ) -> Result<u16, String> {
        let body = webhook_body(Vec::new(), 0);
        let key = if valid_signature { webhook_key.to_owned() } else { format!("{webhook_key}-not-the-key") };
        deliver(url, &signature(&body, &key), &body).await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for XeroFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A webhook's `x-xero-signature`: base64 of HMAC-SHA256 of the raw body with the webhook key.
pub fn signature(body: &str, key: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(body.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn webhook_body(events: Vec<Value>, sequence: u64) -> String {
    let entropy: String = (0..20).map(|_| char::from(b'A' + rand::rng().random_range(0..26u8))).collect();
    let body = json!({
        "events": events,
        "firstEventSequence": sequence,
        "lastEventSequence": sequence,
        "entropy": entropy,
    });
    body.to_string()
}

async fn deliver(url: &str, signature: &str, body: &str) -> Result<u16, String> {
    let headers = [("Content-Type", "application/json"), ("x-xero-signature", signature)];
    let answer = super::post(url, &headers, body).await;
    match &answer {
        Ok(status) => tracing::info!(%url, status, "xero fake: webhook answered"),
        Err(error) => tracing::warn!(%url, %error, "xero fake: webhook failed"),
    }
    answer
}

async fn handle(state: Arc<Mutex<State>>, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
    };
    let (answer, delay) = {
        let mut state = lock(&state);
        let answer = state.serve(&received);
        (answer, state.response_delay)
    };
    let in_flight = answer.admitted.then(|| InFlight(Arc::clone(&state)));
    if in_flight.is_some() && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    drop(in_flight);
    let mut response = http::Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", http::HeaderValue::from_static(answer.content_type));
    if let Ok(id) = http::HeaderValue::from_str(&uuid()) {
        headers.insert("xero-correlation-id", id);
    }
    for (name, value) in answer.headers {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

impl State {
    fn issue_code(&mut self, redirect_uri: &str) -> String {
        let (code, auth_event_id, now) = (hex(&rand::rng().random::<[u8; 32]>()), uuid(), OffsetDateTime::now_utc());
        self.codes
            .insert(code.clone(), Code { redirect_uri: redirect_uri.to_owned(), auth_event_id: auth_event_id.clone() });
        let org = &mut self.org;
        org.auth_event_id = Some(auth_event_id);
        org.created.get_or_insert(now);
        org.updated = Some(now);
        code
    }

    /// `GET /identity/connect/authorize`: Xero's consent screen, approved at once (the local
    /// stack's admin has nobody to ask): redirects to `redirect_uri` with a code and the state.
    fn consent(&mut self, req: &Received) -> Answer {
        let query = parse_form(&req.query);
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (Some(redirect_uri), Some(state)) = (param("redirect_uri"), param("state")) else {
            return Answer::oauth(400, "invalid_request");
        };
        if param("client_id").as_deref() != Some(self.client_id.as_str()) {
            return Answer::oauth(400, "unauthorized_client");
        }
        let code = self.issue_code(&redirect_uri);
        let encode = |v: &str| -> String {
            v.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        let location =
            format!("{redirect_uri}?code={code}&scope={}&state={}", encode("openid offline_access"), encode(&state));
        let mut answer = Answer::text(302, String::new());
        answer.headers.push(("location", location));
        answer
    }

    /// Answers one request and records it.
    fn serve(&mut self, req: &Received) -> Answer {
        let path = req.path.trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').collect();
        let answer = match (req.method.as_str(), segments.as_slice()) {
            ("POST", ["", "connect", "token"]) => self.token(req),
            ("GET", ["", "connections"]) => self.connections(req),
            ("GET", ["", "identity", "connect", "authorize"]) => self.consent(req),
            (_, ["", "api.xro", "2.0", rest @ ..]) => self.api(req, rest),
            _ => Answer::not_found(),
        };
        self.requests.push(RecordedRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            idempotency_key: req.header("idempotency-key").map(str::to_owned),
            tenant_id: req.header("xero-tenant-id").map(str::to_owned),
            status: answer.status,
        });
        answer
    }

    /// `POST /connect/token`: the authorization-code and refresh-token grants.
    fn token(&mut self, req: &Received) -> Answer {
        let form = parse_form(&String::from_utf8_lossy(&req.body));
        let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        self.token_calls += 1;
        if param("grant_type") == Some("refresh_token") {
            self.refresh_calls += 1;
        }
        let form_encoded = req.header("content-type").is_some_and(|t| {
            t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
        if !form_encoded {
            return Answer::oauth(400, "invalid_request");
        }
        if !self.client_authenticated(req.header("authorization")) {
            return Answer::oauth(401, "invalid_client");
        }
        match param("grant_type") {
            Some("authorization_code") => {
                // Single use: a code presented is gone, whether the exchange succeeds or not.
                let code = self.codes.remove(param("code").unwrap_or_default());
                match code {
                    Some(code) if param("redirect_uri") == Some(code.redirect_uri.as_str()) => {
                        let grant = self.new_grant(code.auth_event_id);
                        self.grants.push(grant);
                        self.token_answer(self.grants.len() - 1)
                    }
                    _ => Answer::oauth(400, "invalid_grant"),
                }
            }
            Some("refresh_token") => self.refresh(param("refresh_token").unwrap_or_default()),
            _ => Answer::oauth(400, "unsupported_grant_type"),
        }
    }

    /// `Authorization: Basic base64(client_id:client_secret)`.
    fn client_authenticated(&self, header: Option<&str>) -> bool {
        let credentials = header
            .and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")))
            .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
            .and_then(|decoded| String::from_utf8(decoded).ok());
        credentials.is_some_and(|c| c.split_once(':') == Some((&self.client_id, &self.client_secret)))
    }

    /// Xero's rotation: the current refresh token gets a new pair (the old access token stops
    /// working) and stays reusable for the grace period; reusing it then gets yet another pair,
    /// which replaces the one issued before.
    fn refresh(&mut self, presented: &str) -> Answer {
        let now = Instant::now();
        let grace = self.refresh_grace;
        let current = self.grants.iter().position(|g| g.refresh == presented);
        let reused = || {
            self.grants.iter().position(|g| {
                g.previous.as_ref().is_some_and(|(token, used)| token == presented && now.duration_since(*used) < grace)
            })
        };
        let index = match (current, reused()) {
            (Some(i), _) => {
                self.grants[i].previous = Some((presented.to_owned(), now));
                i
            }
            (None, Some(i)) => i,
            (None, None) => return Answer::oauth(400, "invalid_grant"),
        };
        let previous = self.grants[index].previous.take();
        let fresh = self.new_grant(self.grants[index].auth_event_id.clone());
        self.grants[index] = Grant { previous, ..fresh };
        self.token_answer(index)
    }

    /// A new pair of tokens, the access token a JWT-looking string with Xero's claims.
    fn new_grant(&self, auth_event_id: String) -> Grant {
        let now = OffsetDateTime::now_utc();
        let lifetime = Duration::from_secs(self.access_lifetime);
        let session = hex(&rand::rng().random::<[u8; 16]>());
        let access = jwt(&json!({
            "nbf": now.unix_timestamp(),
            "exp": (now + lifetime).unix_timestamp(),
            "iss": "https://identity.xero.com",
            "aud": "https://identity.xero.com/resources",
            "client_id": self.client_id,
            "sub": self.subject,
            "auth_time": now.unix_timestamp(),
            "xero_userid": self.user_id,
            "global_session_id": session,
            "sid": session,
            "jti": hex(&rand::rng().random::<[u8; 16]>()),
            "authentication_event_id": auth_event_id,
            "scope": SCOPE.split(' ').collect::<Vec<_>>(),
            "amr": ["pwd"],
        }));
        Grant {
            auth_event_id,
            access,
            access_expires: Instant::now() + lifetime,
            access_expires_utc: now + lifetime,
            refresh: hex(&rand::rng().random::<[u8; 32]>()),
            previous: None,
        }
    }

    fn token_answer(&self, grant: usize) -> Answer {
        let grant = &self.grants[grant];
        let now = OffsetDateTime::now_utc();
        let id_token = jwt(&json!({
            "nbf": now.unix_timestamp(),
            "exp": now.unix_timestamp() + 300,
            "iss": "https://identity.xero.com",
            "aud": self.client_id,
            "iat": now.unix_timestamp(),
            "sub": self.subject,
            "auth_time": now.unix_timestamp(),
            "xero_userid": self.user_id,
            "preferred_username": "accounts@bestow.example",
            "email": "accounts@bestow.example",
            "given_name": "Bestow",
            "family_name": "Accounts",
        }));
        let mut answer = Answer::json(
            200,
            &json!({
                "id_token": id_token,
                "access_token": grant.access,
                "expires_in": self.access_lifetime,
                "token_type": "Bearer",
                "refresh_token": grant.refresh,
                "scope": SCOPE,
            }),
        );
        answer.headers = vec![("cache-control", "no-store".to_owned()), ("pragma", "no-cache".to_owned())];
        answer
    }

    /// Checks `Authorization: Bearer <access token>`: a current, unexpired one.
    fn authenticate(&self, header: Option<&str>) -> Result<(), Answer> {
        let token = header.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer "))).map(str::trim);
        let grant = token.and_then(|t| self.grants.iter().find(|g| g.access == t));
        match grant {
            Some(g) if g.access_expires > Instant::now() => Ok(()),
            Some(g) => {
                let at =
                    g.access_expires_utc.format(format_description!("[month]/[day]/[year] [hour]:[minute]:[second]"));
                let detail = format!("TokenExpired: token expired at {}", at.unwrap_or_default());
                Err(Answer::problem(401, "Unauthorized", &detail))
            }
            None => Err(Answer::problem(401, "Unauthorized", "AuthenticationUnsuccessful")),
        }
    }

    /// `GET /connections` (optionally `?authEventId=`): the organisation, once connected.
    fn connections(&self, req: &Received) -> Answer {
        if let Err(answer) = self.authenticate(req.header("authorization")) {
            return answer;
        }
        let wanted = query_param(&req.query, "authEventId");
        let org = &self.org;
        let connection = org.created.zip(org.updated).map(|(created, updated)| {
            json!({
                "id": org.connection_id,
                "authEventId": org.auth_event_id,
                "tenantId": org.tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": TENANT_NAME,
                "createdDateUtc": connection_time(created),
                "updatedDateUtc": connection_time(updated),
            })
        });
        let listed = connection.into_iter().filter(|c| wanted.as_ref().is_none_or(|w| c["authEventId"] == w.as_str()));
        Answer::json(200, &Value::Array(listed.collect()))
    }

    /// `/api.xro/2.0/…`: injected failures, token, tenant, `Accept`, rate limits, idempotency.
    fn api(&mut self, req: &Received, rest: &[&str]) -> Answer {
        if self.failures.front().is_some_and(|f| !f.applied) {
            let failure = self.failures.pop_front().expect("a failure was just seen");
            return injected(failure.status);
        }
        if let Err(answer) = self.authenticate(req.header("authorization")) {
            return answer;
        }
        if !req.header("xero-tenant-id").is_some_and(|t| t.eq_ignore_ascii_case(&self.org.tenant_id)) {
            return Answer::problem(403, "Forbidden", "AuthenticationUnsuccessful");
        }
        if !req.header("accept").is_some_and(|a| a.to_ascii_lowercase().contains("application/json")) {
            // Xero answers XML without `Accept: application/json`; the fake speaks JSON only.
            let mut answer = Answer::text(406, "The Xero fake answers JSON only: send Accept: application/json".into());
            answer.content_type = "text/plain; charset=utf-8";
            return answer;
        }
        let now = Instant::now();
        while self.calls.front().is_some_and(|at| now.duration_since(*at) >= DAY) {
            self.calls.pop_front();
        }
        let in_minute = self.calls_in_minute(now);
        let wait_for = |oldest: Option<&Instant>, window: Duration| {
            let left = oldest.map_or(window, |at| window.saturating_sub(now.duration_since(*at)));
            (left.as_secs_f64().ceil() as u64).max(1)
        };
        let limited = if self.in_flight >= CONCURRENT_LIMIT {
            // Xero sends no Retry-After for the concurrent limit.
            Some(("concurrent", None))
        } else if in_minute >= self.minute_limit {
            Some(("minute", Some(wait_for(self.calls.get(self.calls.len() - in_minute), MINUTE))))
        } else if self.calls.len() >= DAY_LIMIT {
            Some(("day", Some(wait_for(self.calls.front(), DAY))))
        } else {
            None
        };
        if let Some((problem, retry_after)) = limited {
            let detail = "The API rate limit for your organisation/application pairing has been exceeded. Please \
                wait before making another call.";
            let mut answer = Answer::problem(429, "Too Many Requests", detail);
            answer.headers.push(("x-rate-limit-problem", problem.to_owned()));
            if let Some(seconds) = retry_after {
                answer.headers.push(("retry-after", seconds.to_string()));
            }
            answer.headers.extend(self.limit_headers(now));
            return answer;
        }
        self.calls.push_back(now);
        self.in_flight += 1;
        let mut answer = self.idempotent(req, rest);
        if self.failures.front().is_some_and(|f| f.applied) {
            let failure = self.failures.pop_front().expect("a failure was just seen");
            answer = injected(failure.status);
        }
        answer.admitted = true;
        answer.headers.extend(self.limit_headers(now));
        answer
    }

    fn calls_in_minute(&self, now: Instant) -> usize {
        self.calls.iter().rev().take_while(|at| now.duration_since(**at) < MINUTE).count()
    }

    /// `X-MinLimit-Remaining`, `X-DayLimit-Remaining`, `X-AppMinLimit-Remaining`.
    fn limit_headers(&self, now: Instant) -> Vec<(&'static str, String)> {
        let minute = self.calls_in_minute(now);
        vec![
            ("x-minlimit-remaining", self.minute_limit.saturating_sub(minute).to_string()),
            ("x-daylimit-remaining", DAY_LIMIT.saturating_sub(self.calls.len()).to_string()),
            ("x-appminlimit-remaining", APP_MINUTE_LIMIT.saturating_sub(minute).to_string()),
        ]
    }

    /// Replays the first answer of a repeated `Idempotency-Key` (POST, PUT, PATCH; per tenant;
    /// same method and path), else routes and saves the answer (5xx excepted).
    fn idempotent(&mut self, req: &Received, rest: &[&str]) -> Answer {
        let key = req.header("idempotency-key").filter(|_| matches!(req.method.as_str(), "POST" | "PUT" | "PATCH"));
        let Some(key) = key else { return self.route(req, rest) };
        if key.len() > MAX_IDEMPOTENCY_KEY {
            let detail = format!("The Idempotency-Key must be {MAX_IDEMPOTENCY_KEY} characters or fewer");
            return Answer::problem(400, "Bad Request", &detail);
        }
        let scope = (self.org.tenant_id.clone(), key.to_owned());
        if let Some(saved) = self.idempotent.get(&scope) {
            if saved.method == req.method && saved.path.eq_ignore_ascii_case(&req.path) {
                return Answer::text(saved.status, saved.body.clone());
            }
            let detail = "The Idempotency-Key was already used for a different request";
            return Answer::problem(400, "Bad Request", detail);
        }
        let answer = self.route(req, rest);
        if answer.status < 500 {
            let saved = Saved {
                method: req.method.clone(),
                path: req.path.clone(),
                status: answer.status,
                body: answer.body.clone(),
            };
            self.idempotent.insert(scope, saved);
        }
        answer
    }

    fn route(&mut self, req: &Received, rest: &[&str]) -> Answer {
        let name = |i: usize| rest.get(i).map(|s| s.to_ascii_lowercase()).unwrap_or_default();
        match (req.method.as_str(), rest.len(), name(0).as_str(), name(2).as_str()) {
            ("PUT" | "POST", 1, "invoices", _) => self.create_invoices(req),
            ("GET", 2, "invoices", _) => match self.invoice_index(rest[1]) {
                Some(i) => Answer::json(200, &envelope("Invoices", vec![self.invoices[i].clone()])),
                None => Answer::not_found(),
            },
            ("PUT" | "POST", 4, "invoices", "attachments") => {
                self.attach(rest[1], &percent_decode(rest[3], false), req)
            }
            ("GET", 3, "invoices", "attachments") => {
                let Some(i) = self.invoice_index(rest[1]) else { return Answer::not_found() };
                let id = self.invoices[i]["InvoiceID"].as_str().unwrap_or_default();
                let listed = self.attachments.get(id).into_iter().flatten().map(|a| attachment_json(id, a));
                Answer::json(200, &envelope("Attachments", listed.collect()))
            }
            ("PUT" | "POST", 1, "payments", _) => self.create_payments(req),
            ("GET", 2, "payments", _) => {
                match self
                    .payments
                    .iter()
                    .find(|p| p["PaymentID"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(rest[1])))
                {
                    Some(payment) => Answer::json(200, &envelope("Payments", vec![payment.clone()])),
                    None => Answer::not_found(),
                }
            }
            _ => Answer::not_found(),
        }
    }

    /// An invoice's index, by `InvoiceID` (any case) or `InvoiceNumber`.
    fn invoice_index(&self, id: &str) -> Option<usize> {
        self.invoices.iter().position(|invoice| {
            invoice["InvoiceID"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)) || invoice["InvoiceNumber"] == id
        })
    }

    /// `PUT`/`POST /Invoices`: all or nothing; `?unitdp=4` keeps unit amounts to 4 places
    /// (else 2, as Xero rounds them).
    fn create_invoices(&mut self, req: &Received) -> Answer {
        let items = match items_of(&req.body, "Invoices") {
            Ok(items) => items,
            Err(answer) => return answer,
        };
        let unit_dp = if query_param(&req.query, "unitdp").as_deref() == Some("4") { 4 } else { 2 };
        let mut numbers: Vec<String> =
            self.invoices.iter().filter_map(|i| i["InvoiceNumber"].as_str().map(str::to_owned)).collect();
        let (mut checked, mut failed) = (Vec::new(), Vec::new());
        for item in &items {
            match self.check_invoice(item, unit_dp, &numbers) {
                Ok(invoice) => {
                    numbers.extend(invoice["InvoiceNumber"].as_str().map(str::to_owned));
                    checked.push(invoice);
                }
                Err(errors) => failed.push(with_errors(item, errors)),
            }
        }
        if !failed.is_empty() {
            return Answer::validation(failed);
        }
        let created = checked.into_iter().map(|invoice| self.insert_invoice(invoice)).collect();
        Answer::json(200, &envelope("Invoices", created))
    }

    /// Validates a new invoice: the invoice to insert (Contact as given, no ids yet), or its
    /// validation messages.
    fn check_invoice(&self, item: &Value, unit_dp: i32, numbers: &[String]) -> Result<Value, Vec<String>> {
        let mut errors = Vec::new();
        let text = |key: &str| text(item, key);
        if item.get("InvoiceID").is_some_and(|id| !id.is_null()) {
            errors.push("The Xero fake creates invoices only: updating one by InvoiceID is not supported".to_owned());
        }
        let kind = text("Type").unwrap_or_default();
        if !matches!(kind, "ACCREC" | "ACCPAY") {
            errors.push(format!("Invoice Type '{kind}' is not valid: use ACCREC or ACCPAY"));
        }
        let status = text("Status").unwrap_or("DRAFT");
        if !matches!(status, "DRAFT" | "SUBMITTED" | "AUTHORISED") {
            errors.push("Invoice not of valid status for creation".to_owned());
        }
        if let Err(message) = self.check_contact(&item["Contact"]) {
            errors.push(message);
        }
        let currency = text("CurrencyCode").unwrap_or(BASE_CURRENCY).to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(format!("The Currency code '{currency}' is not a valid currency code"));
        }
        let today = OffsetDateTime::now_utc().date();
        let date = match item.get("Date").filter(|d| !d.is_null()) {
            None => Some(today),
            Some(date) => parse_date(date),
        };
        if date.is_none() {
            errors.push(format!("Date '{}' is not a valid date", item["Date"]));
        }
        let due = item.get("DueDate").filter(|d| !d.is_null()).map(parse_date);
        if due.is_some_and(|d| d.is_none()) {
            errors.push(format!("Due Date '{}' is not a valid date", item["DueDate"]));
        }
        let line_amount_types = text("LineAmountTypes").unwrap_or("Exclusive");
        if !matches!(line_amount_types, "Exclusive" | "Inclusive" | "NoTax") {
            errors.push(format!("LineAmountTypes '{line_amount_types}' is not valid"));
        }
        let lines = item["LineItems"].as_array().cloned().unwrap_or_default();
        if lines.is_empty() {
            errors.push("Invoices must have at least one line item".to_owned());
        }
        let mut line_items = Vec::new();
        let mut subtotal = 0;
        for line in &lines {
            match self.check_line(line, status, unit_dp) {
                Ok((line, amount)) => {
                    subtotal += amount;
                    line_items.push(line);
                }
                Err(line_errors) => errors.extend(line_errors),
            }
        }
        if subtotal < 0 {
            errors.push("The total of an invoice cannot be negative".to_owned());
        }
        let number = text("InvoiceNumber");
        if let Some(number) = number
            && kind == "ACCREC"
            && numbers.iter().any(|n| n == number)
        {
            errors.push("Invoice # must be unique.".to_owned());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (date, due) = (date.unwrap_or(today), due.flatten());
        let mut invoice = json!({
            "Type": kind,
            "InvoiceNumber": number,
            "Reference": text("Reference").unwrap_or_default(),
            "Contact": item["Contact"],
            "Date": day_ms(date),
            "DateString": date_string(date),
            "Status": status,
            "LineAmountTypes": line_amount_types,
            "LineItems": line_items,
            "SubTotal": money(subtotal),
            "TotalTax": 0.0,
            "Total": money(subtotal),
            "AmountDue": money(subtotal),
            "AmountPaid": 0.0,
            "AmountCredited": 0.0,
            "CurrencyCode": currency,
            "CurrencyRate": 1.0,
            "IsDiscounted": false,
            "HasAttachments": false,
            "HasErrors": false,
            "Payments": [],
            "CreditNotes": [],
            "Prepayments": [],
            "Overpayments": [],
        });
        if let Some(due) = due {
            invoice["DueDate"] = json!(day_ms(due));
            invoice["DueDateString"] = json!(date_string(due));
        }
        Ok(invoice)
    }

    /// A line item, with its amount in cents. Quantity defaults to 1, UnitAmount to 0; an
    /// approved invoice needs an account on each line.
    fn check_line(&self, line: &Value, status: &str, unit_dp: i32) -> Result<(Value, i64), Vec<String>> {
        let mut errors = Vec::new();
        let text = |key: &str| text(line, key);
        let (description, item_code) = (text("Description"), text("ItemCode"));
        if description.is_none() && item_code.is_none() {
            errors.push("A Description or ItemCode must be given for each line item".to_owned());
        }
        let number_of = |key: &str, default: f64| match line.get(key).filter(|v| !v.is_null()) {
            None => Some(default),
            Some(value) => number(value),
        };
        let quantity = number_of("Quantity", 1.0).map(|q| round_to(q, 4));
        let unit = number_of("UnitAmount", 0.0).map(|u| round_to(u, unit_dp));
        if quantity.is_none() {
            errors.push(format!("Quantity '{}' is not a number", line["Quantity"]));
        }
        if unit.is_none() {
            errors.push(format!("UnitAmount '{}' is not a number", line["UnitAmount"]));
        }
        let account = text("AccountCode");
        let known = |code: &str| {
            self.accounts.iter().any(|(_, c, _, kind)| *c == code && !matches!(*kind, "BANK" | "CURRENT" | "CURRLIAB"))
        };
        match account {
            Some(code) if !known(code) => {
                errors.push(format!("Account code '{code}' is not a valid code for this document."))
            }
            None if status != "DRAFT" => {
                errors.push("Account code '' is not a valid code for this document.".to_owned())
            }
            _ => {}
        }
        let (Some(quantity), Some(unit)) = (quantity, unit) else { return Err(errors) };
        if !errors.is_empty() {
            return Err(errors);
        }
        let amount = to_cents(quantity * unit);
        let mut item = json!({
            "Description": description.unwrap_or_default(),
            "Quantity": quantity,
            "UnitAmount": unit,
            "TaxType": text("TaxType").unwrap_or("NONE"),
            "TaxAmount": 0.0,
            "LineAmount": money(amount),
            "Tracking": [],
        });
        if let Some(code) = account {
            item["AccountCode"] = json!(code);
        }
        if let Some(code) = item_code {
            item["ItemCode"] = json!(code);
        }
        Ok((item, amount))
    }

    /// A contact by `ContactID` must exist; else `ContactNumber` or `Name` (a new contact needs
    /// a name).
    fn check_contact(&self, contact: &Value) -> Result<(), String> {
        let text = |key: &str| text(contact, key);
        if let Some(id) = text("ContactID") {
            return match self.contact_index(contact) {
                Some(_) => Ok(()),
                None => Err(format!("The contact with ContactID '{id}' could not be found")),
            };
        }
        match (text("Name"), text("ContactNumber")) {
            (None, None) => Err("A Contact must be specified for this type of transaction".to_owned()),
            (None, Some(number)) if self.contact_index(contact).is_none() => {
                Err(format!("No contact has the ContactNumber '{number}': a new contact needs a Name"))
            }
            _ => Ok(()),
        }
    }

    /// The existing contact an invoice's `Contact` names: by ContactID, else ContactNumber,
    /// else Name (any case).
    fn contact_index(&self, contact: &Value) -> Option<usize> {
        let text = |key: &str| text(contact, key);
        let by = |key: &str, value: &str| {
            self.contacts.iter().position(|c| c[key].as_str().is_some_and(|v| v.eq_ignore_ascii_case(value)))
        };
        if let Some(id) = text("ContactID") {
            return by("ContactID", id);
        }
        text("ContactNumber").and_then(|n| by("ContactNumber", n)).or_else(|| text("Name").and_then(|n| by("Name", n)))
    }

    /// Inserts a checked invoice: its contact (created if new), ids, number, timestamps.
    fn insert_invoice(&mut self, mut invoice: Value) -> Value {
        let contact = match self.contact_index(&invoice["Contact"]) {
            Some(i) => self.contacts[i].clone(),
            None => {
                let given = &invoice["Contact"];
                let mut contact = json!({
                    "ContactID": uuid(),
                    "Name": given["Name"].as_str().map(str::trim),
                    "ContactStatus": "ACTIVE",
                    "IsSupplier": invoice["Type"] == "ACCPAY",
                    "IsCustomer": invoice["Type"] == "ACCREC",
                    "UpdatedDateUTC": ms_date(OffsetDateTime::now_utc()),
                });
                for key in ["ContactNumber", "EmailAddress"] {
                    if let Some(value) = given[key].as_str() {
                        contact[key] = json!(value.trim());
                    }
                }
                self.contacts.push(contact.clone());
                contact
            }
        };
        invoice["Contact"] = contact;
        invoice["InvoiceID"] = json!(uuid());
        if invoice["InvoiceNumber"].is_null() {
            let number = if invoice["Type"] == "ACCREC" {
                let taken = |n: &str| self.invoices.iter().any(|i| i["InvoiceNumber"] == n);
                let mut number = format!("INV-{:04}", self.next_invoice_number);
                while taken(&number) {
                    self.next_invoice_number += 1;
                    number = format!("INV-{:04}", self.next_invoice_number);
                }
                self.next_invoice_number += 1;
                number
            } else {
                String::new()
            };
            invoice["InvoiceNumber"] = json!(number);
        }
        for line in invoice["LineItems"].as_array_mut().into_iter().flatten() {
            line["LineItemID"] = json!(uuid());
        }
        invoice["UpdatedDateUTC"] = json!(ms_date(OffsetDateTime::now_utc()));
        self.invoices.push(invoice.clone());
        invoice
    }

    /// `PUT`/`POST /Invoices/{id}/Attachments/{FileName}`: the raw body, one file per name.
    fn attach(&mut self, invoice: &str, file_name: &str, req: &Received) -> Answer {
        let Some(i) = self.invoice_index(invoice) else { return Answer::not_found() };
        if req.body.len() > MAX_ATTACHMENT {
            return Answer::problem(413, "Request Entity Too Large", "Attachments must be 25 MB or smaller");
        }
        let id = self.invoices[i]["InvoiceID"].as_str().unwrap_or_default().to_owned();
        let attachment = Attachment {
            id: uuid(),
            file_name: file_name.to_owned(),
            mime: req.header("content-type").unwrap_or("application/octet-stream").to_owned(),
            bytes: req.body.to_vec(),
        };
        let json = attachment_json(&id, &attachment);
        let attachments = self.attachments.entry(id).or_default();
        match attachments.iter_mut().find(|a| a.file_name == file_name) {
            Some(existing) => *existing = attachment,
            None => attachments.push(attachment),
        }
        self.invoices[i]["HasAttachments"] = json!(true);
        Answer::json(200, &envelope("Attachments", vec![json]))
    }

    /// `PUT`/`POST /Payments`: all or nothing, against approved invoices, to a bank account.
    fn create_payments(&mut self, req: &Received) -> Answer {
        let items = match items_of(&req.body, "Payments") {
            Ok(items) => items,
            Err(answer) => return answer,
        };
        // What each invoice still owes, with the batch's earlier payments taken off.
        let mut owed: HashMap<usize, i64> = HashMap::new();
        let (mut checked, mut failed) = (Vec::new(), Vec::new());
        for item in &items {
            match self.check_payment(item, &mut owed) {
                Ok(payment) => checked.push(payment),
                Err(errors) => failed.push(with_errors(item, errors)),
            }
        }
        if !failed.is_empty() {
            return Answer::validation(failed);
        }
        let made = checked.into_iter().map(|payment| self.insert_payment(payment)).collect();
        Answer::json(200, &envelope("Payments", made))
    }

    fn check_payment(&self, item: &Value, owed: &mut HashMap<usize, i64>) -> Result<NewPayment, Vec<String>> {
        let mut errors = Vec::new();
        let invoice_ref = text(&item["Invoice"], "InvoiceID").or_else(|| text(&item["Invoice"], "InvoiceNumber"));
        let invoice = match invoice_ref {
            None => {
                errors.push("An Invoice must be specified for the payment".to_owned());
                None
            }
            Some(id) => {
                let found = self.invoice_index(id);
                match found.map(|i| (i, &self.invoices[i])) {
                    None => errors.push(format!("Invoice '{id}' could not be found")),
                    Some((_, invoice)) if invoice["Status"] != "AUTHORISED" => {
                        errors.push("Payments can only be made against Authorised documents".to_owned())
                    }
                    Some(_) => {}
                }
                // The amount is checked against approved invoices only.
                found.filter(|i| self.invoices[*i]["Status"] == "AUTHORISED")
            }
        };
        let account_code = text(&item["Account"], "Code");
        let account_id = text(&item["Account"], "AccountID");
        let account = self.accounts.iter().position(|(id, code, _, _)| {
            account_code == Some(*code) || account_id.is_some_and(|a| a.eq_ignore_ascii_case(id))
        });
        match account {
            _ if account_code.is_none() && account_id.is_none() => {
                errors.push("An Account must be specified for the payment".to_owned())
            }
            None => errors.push("Account could not be found".to_owned()),
            Some(i) if self.accounts[i].3 != "BANK" => {
                errors.push("Account type is invalid for making a payment to/from".to_owned())
            }
            Some(_) => {}
        }
        let date = match item.get("Date").filter(|d| !d.is_null()) {
            None => Some(OffsetDateTime::now_utc().date()),
            Some(date) => parse_date(date),
        };
        if date.is_none() {
            errors.push(format!("Date '{}' is not a valid date", item["Date"]));
        }
        let amount = item.get("Amount").and_then(number).map(to_cents).filter(|a| *a > 0);
        if amount.is_none() {
            errors.push("Payment amount must be greater than zero".to_owned());
        }
        if let (Some(i), Some(amount)) = (invoice, amount) {
            let left = *owed.entry(i).or_insert_with(|| cents(&self.invoices[i]["AmountDue"]));
            if amount > left {
                errors.push("Payment amount exceeds the amount outstanding on this document".to_owned());
            } else if errors.is_empty() {
                owed.insert(i, left - amount);
            }
        }
        match (invoice, account, date, amount) {
            (Some(invoice), Some(account), Some(date), Some(amount)) if errors.is_empty() => {
                let reference = text(item, "Reference").unwrap_or_default().to_owned();
                Ok(NewPayment { invoice, account, date, amount, reference })
            }
            _ => Err(errors),
        }
    }

    fn insert_payment(&mut self, p: NewPayment) -> Value {
        let now = ms_date(OffsetDateTime::now_utc());
        let (payment_id, amount) = (uuid(), money(p.amount));
        let invoice = &mut self.invoices[p.invoice];
        let (paid, due) = (cents(&invoice["AmountPaid"]) + p.amount, cents(&invoice["AmountDue"]) - p.amount);
        invoice["AmountPaid"] = json!(money(paid));
        invoice["AmountDue"] = json!(money(due));
        if due == 0 {
            invoice["Status"] = json!("PAID");
            invoice["FullyPaidOnDate"] = json!(day_ms(p.date));
        }
        invoice["UpdatedDateUTC"] = json!(now);
        let summary = json!({
            "PaymentID": payment_id,
            "Date": day_ms(p.date),
            "Amount": amount,
            "Reference": p.reference,
            "CurrencyRate": 1.0,
            "HasAccount": false,
            "HasValidationErrors": false,
        });
        invoice["Payments"].as_array_mut().into_iter().for_each(|payments| payments.push(summary.clone()));
        let mut invoice = invoice.clone();
        invoice["LineItems"] = json!([]);
        invoice["Payments"] = json!([]);
        let kind = if invoice["Type"] == "ACCPAY" { "ACCPAYPAYMENT" } else { "ACCRECPAYMENT" };
        let (account_id, code, _, _) = &self.accounts[p.account];
        let payment = json!({
            "PaymentID": payment_id,
            "Date": day_ms(p.date),
            "BankAmount": amount,
            "Amount": amount,
            "Reference": p.reference,
            "CurrencyRate": 1.0,
            "PaymentType": kind,
            "Status": "AUTHORISED",
            "UpdatedDateUTC": now,
            "HasAccount": true,
            "IsReconciled": false,
            "Account": { "AccountID": account_id, "Code": code },
            "Invoice": invoice,
            "HasValidationErrors": false,
        });
        self.payments.push(payment.clone());
        payment
    }
}

/// A checked payment: invoice and account indexes, amount in cents.
struct NewPayment {
    invoice: usize,
    account: usize,
    date: Date,
    amount: i64,
    reference: String,
}

/// The answer of an injected failure.
fn injected(status: u16) -> Answer {
    match status {
        429 => {
            let detail = "The API rate limit for your organisation/application pairing has been exceeded. Please \
                wait before making another call.";
            let mut answer = Answer::problem(429, "Too Many Requests", detail);
            answer.headers = vec![("retry-after", "1".to_owned()), ("x-rate-limit-problem", "minute".to_owned())];
            answer
        }
        500 => Answer::problem(
            500,
            "An error occurred",
            "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current \
             service status.",
        ),
        503 => Answer::problem(
            503,
            "Service Unavailable",
            "The Xero API is temporarily unavailable. Check the API Status page http://status.developer.xero.com \
             for current service status.",
        ),
        _ => {
            let title = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
            Answer::problem(status, title, "Injected failure")
        }
    }
}

/// The elements of `{"<plural>": [...]}` (or a single element, as Xero also takes).
fn items_of(body: &[u8], plural: &str) -> Result<Vec<Value>, Answer> {
    let parsed: Value = serde_json::from_slice(body).map_err(|e| Answer::post_data_invalid(&e.to_string()))?;
    let items = match parsed.get(plural) {
        Some(Value::Array(items)) => items.clone(),
        None if parsed.is_object() => vec![parsed],
        _ => return Err(Answer::post_data_invalid(&format!("expected an object with an array of {plural}"))),
    };
    if items.is_empty() {
        return Err(Answer::post_data_invalid(&format!("no {plural} were given")));
    }
    Ok(items)
}

/// An element as given, with its `ValidationErrors`.
fn with_errors(item: &Value, errors: Vec<String>) -> Value {
    let mut element = item.as_object().cloned().unwrap_or_default();
    let errors: Vec<Value> = errors.into_iter().map(|message| json!({ "Message": message })).collect();
    element.insert("ValidationErrors".to_owned(), json!(errors));
    Value::Object(element)
}

/// Xero's answer envelope around `items`.
fn envelope(plural: &str, items: Vec<Value>) -> Value {
    let mut body = Map::new();
    body.insert("Id".to_owned(), json!(uuid()));
    body.insert("Status".to_owned(), json!("OK"));
    body.insert("ProviderName".to_owned(), json!(PROVIDER_NAME));
    let now = OffsetDateTime::now_utc();
    body.insert("DateTimeUTC".to_owned(), json!(format!("/Date({})/", now.unix_timestamp_nanos() / 1_000_000)));
    body.insert(plural.to_owned(), Value::Array(items));
    Value::Object(body)
}

fn attachment_json(invoice_id: &str, a: &Attachment) -> Value {
    json!({
        "AttachmentID": a.id,
        "FileName": a.file_name,
        "Url": format!("https://api.xero.com/api.xro/2.0/Invoices/{invoice_id}/Attachments/{}", encode(&a.file_name)),
        "MimeType": a.mime,
        "ContentLength": a.bytes.len(),
    })
}

/// A JWT-looking token: header and claims as base64url JSON, a random signature.
fn jwt(claims: &Value) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let header = json!({ "alg": "RS256", "kid": KEY_ID, "typ": "JWT" });
    let signature = URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>());
    format!("{}.{}.{signature}", part(&header), part(claims))
}

/// A non-blank string field, trimmed.
fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// A JSON number, or a string holding one.
fn number(value: &Value) -> Option<f64> {
    value.as_f64().or_else(|| value.as_str()?.trim().parse().ok()).filter(|n: &f64| n.is_finite())
}

/// Rounds half away from zero to `places` decimals (nudged past binary representation errors).
fn round_to(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    let scaled = x * scale;
    (scaled + scaled.signum() * 1e-7).round() / scale
}

/// An amount in cents, rounded half away from zero.
fn to_cents(amount: f64) -> i64 {
    (round_to(amount, 2) * 100.0).round() as i64
}

/// A JSON money value in cents.
fn cents(value: &Value) -> i64 {
    to_cents(value.as_f64().unwrap_or_default())
}

fn money(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// `2026-11-30`, `2026-11-30T00:00:00` or `/Date(1795996800000+0000)/`.
fn parse_date(value: &Value) -> Option<Date> {
    let text = value.as_str()?.trim();
    if let Some(rest) = text.strip_prefix("/Date(") {
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
        let millis: i64 = digits.parse().ok()?;
        return OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000)).ok().map(|at| at.date());
    }
    let (day, rest) = text.split_at_checked(10)?;
    if !rest.is_empty() && !rest.starts_with('T') {
        return None;
    }
    Date::parse(day, format_description!("[year]-[month]-[day]")).ok()
}

/// Xero's JSON date: `/Date(<Unix milliseconds>+0000)/`.
fn ms_date(at: OffsetDateTime) -> String {
    format!("/Date({}+0000)/", at.unix_timestamp_nanos() / 1_000_000)
}

/// A day as Xero's JSON date (midnight UTC).
fn day_ms(date: Date) -> String {
    ms_date(date.midnight().assume_utc())
}

/// A day as Xero's `DateString`: `2026-11-30T00:00:00`.
fn date_string(date: Date) -> String {
    let day = date.format(format_description!("[year]-[month]-[day]")).unwrap_or_default();
    format!("{day}T00:00:00")
}

/// `2026-11-26T05:49:43.1234567`, as `GET /connections` answers times.
fn connection_time(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]");
    at.format(format).unwrap_or_default()
}

/// `2026-11-26T05:49:43.123`, as webhook events carry their time.
fn event_time(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]");
    at.format(format).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random version-4 UUID.
fn uuid() -> String {
    let h = hex(&rand::rng().random::<[u8; 16]>());
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..])
}

/// Percent-encodes all but the unreserved characters.
fn encode(s: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    s.bytes().map(|b| if keep(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Decodes `%XX` escapes (an invalid one stays as written), and `+` as a space in forms.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let (bytes, mut out, mut i) = (s.as_bytes(), Vec::new(), 0);
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        let (byte, width) = match (bytes[i], hex) {
            (b'%', Some(byte)) => (byte, 3),
            (b'+', _) if plus_is_space => (b' ', 1),
            (byte, _) => (byte, 1),
        };
        out.push(byte);
        i += width;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes `application/x-www-form-urlencoded`.
fn parse_form(body: &str) -> Vec<(String, String)> {
    let pairs = body.split('&').filter(|pair| !pair.is_empty());
    let pairs = pairs.map(|pair| pair.split_once('=').unwrap_or((pair, "")));
    pairs.map(|(k, v)| (percent_decode(k, true), percent_decode(v, true))).collect()
}

/// A query parameter, its name in any case.
fn query_param(query: &str, name: &str) -> Option<String> {
    parse_form(query).into_iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{XeroFake, signature};

    const CLIENT_ID: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
    const CLIENT_SECRET: &str = "xero-client-secret-0123456789";
    const REDIRECT: &str = "https://app.bestow.example/integrations/xero/callback";

    struct Answer {
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: String,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_str(&self.body).expect("a JSON body")
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }
    }

    async fn send(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("an answer");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        Answer { status, headers, body: response.text().await.expect("a body") }
    }

    /// `POST /connect/token` with this client secret and form.
    async fn token(fake: &XeroFake, secret: &str, form: &[(&str, &str)]) -> Answer {
        let url = format!("{}/connect/token", fake.base_url());
        let basic = STANDARD.encode(format!("{CLIENT_ID}:{secret}"));
        let request = reqwest::Client::new().post(url).header("Authorization", format!("Basic {basic}")).form(form);
        send(request).await
    }

    /// A fake the app is connected to: (fake, access token, refresh token).
    async fn connected() -> (XeroFake, String, String) {
        let fake = XeroFake::start(CLIENT_ID, CLIENT_SECRET).await.expect("start");
        let code = fake.authorize(REDIRECT);
        let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
        let tokens = token(&fake, CLIENT_SECRET, &form).await.json();
        let text = |key: &str| tokens[key].as_str().expect("a token").to_owned();
        (fake, text("access_token"), text("refresh_token"))
    }

    async fn refresh(fake: &XeroFake, refresh_token: &str) -> Answer {
        token(fake, CLIENT_SECRET, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    /// An Accounting API request with the token, the tenant and `Accept: application/json`.
    fn api(fake: &XeroFake, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}/api.xro/2.0/{path}", fake.base_url()))
            .bearer_auth(token)
            .header("xero-tenant-id", fake.tenant_id())
            .header("Accept", "application/json")
    }

    fn invoice_body(status: &str, lines: Value) -> Value {
        json!({ "Invoices": [{
            "Type": "ACCREC",
            "Contact": { "Name": "Vendor One Ltd", "ContactNumber": "vendor-1" },
            "Date": "2026-11-30",
            "DueDate": "2026-12-14",
            "Reference": "cycle-2026-11",
            "CurrencyCode": "EUR",
            "Status": status,
            "LineAmountTypes": "NoTax",
            "LineItems": lines,
        }]})
    }

    /// Creates an AUTHORISED invoice of 12.34 + 3 × 0.333 (0.33 at 2 places): its answer.
    async fn create_invoice(fake: &XeroFake, token: &str, key: Option<&str>) -> Answer {
        let lines = json!([
            { "Description": "Commission", "Quantity": 1.0, "UnitAmount": 12.34, "AccountCode": "200", "TaxType": "NONE" },
            { "Description": "Card fees", "Quantity": 3, "UnitAmount": 0.333, "AccountCode": "260" },
        ]);
        let mut request = api(fake, reqwest::Method::PUT, "Invoices", token).json(&invoice_body("AUTHORISED", lines));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        send(request).await
    }

    #[test]
    fn fakes_xero_signature_matches_hmac_sha256() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), from its definition.
        let hex = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let expected = STANDARD.encode(bytes);
        assert_eq!(expected, "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=");
        assert_eq!(signature("The quick brown fox jumps over the lazy dog", "key"), expected);
        assert_ne!(signature("The quick brown fox jumps over the lazy dog.", "key"), expected);
    }

    #[tokio::test]
    async fn fakes_xero_code_exchange_and_connections() {
        let fake = XeroFake::start(CLIENT_ID, CLIENT_SECRET).await.expect("start");
        let code = fake.authorize(REDIRECT);
        let exchange = |code: String, redirect: &'static str| {
            [("grant_type", "authorization_code".to_owned()), ("code", code), ("redirect_uri", redirect.to_owned())]
        };
        let form = exchange(code.clone(), REDIRECT);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let wrong_secret = token(&fake, "not-the-secret", &form).await;
        assert_eq!((wrong_secret.status, wrong_secret.json()), (401, json!({ "error": "invalid_client" })));

        let answer = token(&fake, CLIENT_SECRET, &form).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let tokens = answer.json();
        assert_eq!((tokens["token_type"].as_str(), tokens["expires_in"].as_u64()), (Some("Bearer"), Some(1800)));
        assert_eq!(
            tokens["scope"],
            "openid profile email accounting.transactions accounting.contacts accounting.attachments offline_access"
        );
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(access.split('.').count(), 3);
        assert_eq!(tokens["id_token"].as_str().unwrap().split('.').count(), 3);
        assert!(tokens["refresh_token"].as_str().is_some_and(|r| r.len() == 64));
        assert!(fake.access_token_valid(access));
        // Single use.
        let again = token(&fake, CLIENT_SECRET, &form).await;
        assert_eq!((again.status, again.json()), (400, json!({ "error": "invalid_grant" })));
        // Another redirect URI than the code's: refused (and the code is spent).
        let other = fake.authorize(REDIRECT);
        let form = exchange(other, "https://evil.example/callback");
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(token(&fake, CLIENT_SECRET, &form).await.json()["error"], "invalid_grant");
        let unknown = [("grant_type", "authorization_code"), ("code", "nope"), ("redirect_uri", REDIRECT)];
        assert_eq!(token(&fake, CLIENT_SECRET, &unknown).await.status, 400);
        assert_eq!(
            token(&fake, CLIENT_SECRET, &[("grant_type", "password")]).await.json()["error"],
            "unsupported_grant_type"
        );
        assert_eq!((fake.token_calls(), fake.refresh_calls()), (6, 0));

        let connections = format!("{}/connections", fake.base_url());
        let listed = send(reqwest::Client::new().get(&connections).bearer_auth(access)).await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        let listed = listed.json();
        assert_eq!(listed.as_array().map(Vec::len), Some(1));
        let connection = &listed[0];
        assert_eq!(
            (connection["tenantId"].as_str(), connection["tenantType"].as_str(), connection["tenantName"].as_str()),
            (Some(fake.tenant_id()), Some("ORGANISATION"), Some("Bestow Platform Ltd"))
        );
        assert!(connection["createdDateUtc"].as_str().is_some_and(|d| d.starts_with("20") && d.len() == 27));
        assert!(connection["id"].as_str().is_some_and(|id| id.len() == 36));
        // The access token names its auth event, which filters the connections.
        let claims = access.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        let event = claims["authentication_event_id"].as_str().unwrap();
        let by_event = |event: &str| {
            send(reqwest::Client::new().get(format!("{connections}?authEventId={event}")).bearer_auth(access))
        };
        // The second authorize() renewed the connection with a new auth event.
        assert_eq!(by_event(event).await.json(), json!([]));
        assert_eq!(by_event(connection["authEventId"].as_str().unwrap()).await.json(), listed);
        let denied = send(reqwest::Client::new().get(&connections).bearer_auth("nope")).await;
        assert_eq!((denied.status, denied.json()["Detail"].clone()), (401, json!("AuthenticationUnsuccessful")));
        assert_eq!(denied.json()["Title"], "Unauthorized");
    }

    #[tokio::test]
    async fn fakes_xero_refresh_rotates_with_a_grace_period() {
        let (fake, access1, refresh1) = connected().await;
        let first = refresh(&fake, &refresh1).await;
        assert_eq!(first.status, 200, "{}", first.body);
        let (access2, refresh2) = (first.json()["access_token"].clone(), first.json()["refresh_token"].clone());
        let (access2, refresh2) = (access2.as_str().unwrap(), refresh2.as_str().unwrap());
        assert!(access2 != access1 && refresh2 != refresh1);
        assert!(!fake.access_token_valid(&access1) && fake.access_token_valid(access2));
        let old = send(api(&fake, reqwest::Method::GET, "Invoices/INV-0001", &access1)).await;
        assert_eq!((old.status, old.json()["Detail"].clone()), (401, json!("AuthenticationUnsuccessful")));
        assert_eq!(send(api(&fake, reqwest::Method::GET, "Invoices/INV-0001", access2)).await.status, 404);

        // The used refresh token again, within the grace period: yet another pair, which
        // replaces the second one.
        let reused = refresh(&fake, &refresh1).await;
        assert_eq!(reused.status, 200, "{}", reused.body);
        let (access3, refresh3) = (reused.json()["access_token"].clone(), reused.json()["refresh_token"].clone());
        let (access3, refresh3) = (access3.as_str().unwrap(), refresh3.as_str().unwrap());
        assert!(access3 != access2 && refresh3 != refresh2);
        assert!(!fake.access_token_valid(access2) && fake.access_token_valid(access3));
        assert_eq!(refresh(&fake, refresh2).await.json(), json!({ "error": "invalid_grant" }));

        fake.set_refresh_grace(Duration::ZERO);
        assert_eq!(refresh(&fake, &refresh1).await.json()["error"], "invalid_grant");
        assert_eq!(refresh(&fake, "unknown").await.status, 400);
        let fourth = refresh(&fake, refresh3).await;
        assert_eq!(fourth.status, 200);
        assert!(fake.access_token_valid(fourth.json()["access_token"].as_str().unwrap()));
        // With the grace at zero, the token just used is refused at once.
        assert_eq!(refresh(&fake, refresh3).await.status, 400);
        assert_eq!((fake.refresh_calls(), fake.token_calls()), (7, 8));

        // An expired access token: Xero's TokenExpired.
        fake.set_access_token_lifetime(0);
        let expiring = refresh(&fake, fourth.json()["refresh_token"].as_str().unwrap()).await.json();
        assert_eq!(expiring["expires_in"], 0);
        let expired_token = expiring["access_token"].as_str().unwrap();
        let expired = send(api(&fake, reqwest::Method::GET, "Invoices/x", expired_token)).await;
        assert_eq!(expired.status, 401);
        assert!(expired.json()["Detail"].as_str().unwrap().starts_with("TokenExpired: token expired at "));
    }

    #[tokio::test]
    async fn fakes_xero_invoices_with_computed_totals_and_validation() {
        let (fake, access, _) = connected().await;
        let created = create_invoice(&fake, &access, None).await;
        assert_eq!(created.status, 200, "{}", created.body);
        assert!(created.header("x-minlimit-remaining").is_some() && created.header("x-daylimit-remaining").is_some());
        assert!(created.header("x-appminlimit-remaining").is_some());
        let body = created.json();
        assert_eq!((body["Status"].as_str(), body["ProviderName"].as_str()), (Some("OK"), Some("Bestow")));
        assert!(body["DateTimeUTC"].as_str().unwrap().starts_with("/Date("));
        let invoice = &body["Invoices"][0];
        assert_eq!(invoice["InvoiceNumber"], "INV-0001");
        assert_eq!(invoice["Status"], "AUTHORISED");
        assert_eq!(invoice["LineItems"][0]["LineAmount"], 12.34);
        assert_eq!(
            (&invoice["LineItems"][1]["UnitAmount"], &invoice["LineItems"][1]["LineAmount"]),
            (&json!(0.33), &json!(0.99))
        );
        assert!(invoice["LineItems"][1]["LineItemID"].as_str().is_some_and(|id| id.len() == 36));
        assert_eq!(
            [
                &invoice["SubTotal"],
                &invoice["TotalTax"],
                &invoice["Total"],
                &invoice["AmountDue"],
                &invoice["AmountPaid"]
            ],
            [&json!(13.33), &json!(0.0), &json!(13.33), &json!(13.33), &json!(0.0)]
        );
        assert_eq!(
            (invoice["DateString"].as_str(), invoice["DueDateString"].as_str()),
            (Some("2026-11-30T00:00:00"), Some("2026-12-14T00:00:00"))
        );
        assert_eq!(invoice["Date"], "/Date(1795996800000+0000)/");
        assert_eq!(
            (invoice["CurrencyCode"].as_str(), invoice["Reference"].as_str()),
            (Some("EUR"), Some("cycle-2026-11"))
        );
        assert_eq!(invoice["HasAttachments"], false);
        let contact = &invoice["Contact"];
        assert_eq!(
            (contact["Name"].as_str(), contact["ContactNumber"].as_str()),
            (Some("Vendor One Ltd"), Some("vendor-1"))
        );
        let id = invoice["InvoiceID"].as_str().unwrap();
        let got = send(api(&fake, reqwest::Method::GET, &format!("Invoices/{id}"), &access)).await;
        assert_eq!(&got.json()["Invoices"][0], invoice);
        assert_eq!(fake.invoice("INV-0001").as_ref(), Some(invoice));

        // The same contact (by ContactNumber) and the next number; unitdp=4 keeps 4 places.
        let lines = json!([{ "Description": "Fee", "Quantity": 2, "UnitAmount": 1.2345, "AccountCode": "200" }]);
        let mut second = invoice_body_with_contact(lines, json!({ "ContactNumber": "vendor-1" }));
        second["Invoices"][0]["Status"] = json!("DRAFT");
        let second = send(api(&fake, reqwest::Method::POST, "Invoices?unitdp=4", &access).json(&second)).await.json();
        let second = &second["Invoices"][0];
        assert_eq!(
            (second["InvoiceNumber"].as_str(), &second["Contact"]["ContactID"]),
            (Some("INV-0002"), &contact["ContactID"])
        );
        assert_eq!((&second["LineItems"][0]["UnitAmount"], &second["Total"]), (&json!(1.2345), &json!(2.47)));
        assert_eq!(fake.contacts().len(), 1);
        let missing =
            send(api(&fake, reqwest::Method::GET, "Invoices/00000000-0000-0000-0000-000000000000", &access)).await;
        assert_eq!((missing.status, missing.json()["Title"].clone()), (404, json!("Not Found")));

        let refused = |body: Value| {
            let request = api(&fake, reqwest::Method::PUT, "Invoices", &access).json(&body);
            async move {
                let answer = send(request).await;
                assert_eq!(answer.status, 400, "{}", answer.body);
                let body = answer.json();
                assert_eq!(
                    (body["ErrorNumber"].as_i64(), body["Type"].as_str()),
                    (Some(10), Some("ValidationException"))
                );
                assert_eq!(body["Message"], "A validation exception occurred");
                let errors = body["Elements"][0]["ValidationErrors"].as_array().unwrap().clone();
                errors.iter().map(|e| e["Message"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
            }
        };
        let no_lines = refused(invoice_body("AUTHORISED", json!([]))).await;
        assert_eq!(no_lines, ["Invoices must have at least one line item"]);
        let lines = json!([{ "Description": "x", "UnitAmount": 1, "AccountCode": "200" }]);
        let no_contact = refused(invoice_body_with_contact(lines.clone(), json!({}))).await;
        assert_eq!(no_contact, ["A Contact must be specified for this type of transaction"]);
        let mut euro = invoice_body("AUTHORISED", lines.clone());
        euro["Invoices"][0]["CurrencyCode"] = json!("EURO");
        assert_eq!(refused(euro).await, ["The Currency code 'EURO' is not a valid currency code"]);
        let bank = json!([{ "Description": "x", "UnitAmount": 1, "AccountCode": "090" }]);
        assert_eq!(
            refused(invoice_body("AUTHORISED", bank)).await,
            ["Account code '090' is not a valid code for this document."]
        );
        let mut paid = invoice_body("PAID", lines);
        paid["Invoices"][0]["Date"] = json!("30/11/2026");
        assert_eq!(refused(paid).await.len(), 2);
        let malformed = send(api(&fake, reqwest::Method::PUT, "Invoices", &access).body("{")).await;
        assert_eq!((malformed.status, malformed.json()["ErrorNumber"].clone()), (400, json!(14)));
        assert_eq!(fake.invoices().len(), 2);

        // Another tenant, no tenant, or no Accept: refused before anything is done.
        let url = format!("{}/api.xro/2.0/Invoices/{id}", fake.base_url());
        let get = || reqwest::Client::new().get(&url).bearer_auth(&access);
        for tenant in ["other", ""] {
            let forbidden = send(get().header("xero-tenant-id", tenant).header("Accept", "application/json")).await;
            assert_eq!((forbidden.status, forbidden.json()["Title"].clone()), (403, json!("Forbidden")));
            assert_eq!(forbidden.json()["Detail"], "AuthenticationUnsuccessful");
        }
        let xml = get().header("xero-tenant-id", fake.tenant_id());
        assert_eq!(send(xml).await.status, 406);
    }

    fn invoice_body_with_contact(lines: Value, contact: Value) -> Value {
        let mut body = invoice_body("AUTHORISED", lines);
        body["Invoices"][0]["Contact"] = contact;
        body
    }

    #[tokio::test]
    async fn fakes_xero_idempotency_key_replays_the_first_answer() {
        let (fake, access, _) = connected().await;
        let first = create_invoice(&fake, &access, Some("cycle-7-invoice")).await;
        let again = create_invoice(&fake, &access, Some("cycle-7-invoice")).await;
        assert_eq!((first.status, again.status), (200, 200));
        assert_eq!(first.body, again.body);
        assert_eq!(fake.invoices().len(), 1);
        let other = create_invoice(&fake, &access, Some("cycle-8-invoice")).await;
        assert_ne!(other.json()["Invoices"][0]["InvoiceID"], first.json()["Invoices"][0]["InvoiceID"]);
        assert_eq!(fake.invoices().len(), 2);

        let long = "k".repeat(129);
        assert_eq!(create_invoice(&fake, &access, Some(&long)).await.status, 400);
        let payment =
            json!({ "Payments": [{ "Invoice": { "InvoiceID": "x" }, "Account": { "Code": "090" }, "Amount": 1 }] });
        let elsewhere =
            api(&fake, reqwest::Method::PUT, "Payments", &access).header("Idempotency-Key", "cycle-7-invoice");
        assert_eq!(send(elsewhere.json(&payment)).await.status, 400);
        // A validation error is saved too: the same key answers it again, even once fixed.
        let bad =
            json!({ "Payments": [{ "Invoice": { "InvoiceID": "nope" }, "Account": { "Code": "090" }, "Amount": 1 }] });
        let put = || api(&fake, reqwest::Method::PUT, "Payments", &access).header("Idempotency-Key", "pay-1");
        let refused = send(put().json(&bad)).await;
        let fixed = first.json()["Invoices"][0]["InvoiceID"].clone();
        let good =
            json!({ "Payments": [{ "Invoice": { "InvoiceID": fixed }, "Account": { "Code": "090" }, "Amount": 1 }] });
        let replayed = send(put().json(&good)).await;
        assert_eq!((refused.status, &refused.body), (replayed.status, &replayed.body));
        assert!(fake.payments().is_empty());
        let requests = fake.requests();
        let keys: Vec<_> = requests.iter().filter_map(|r| r.idempotency_key.as_deref()).collect();
        assert_eq!(keys.len(), 7);
        assert!(requests.iter().skip(1).all(|r| r.tenant_id.as_deref() == Some(fake.tenant_id())));
    }

    #[tokio::test]
    async fn fakes_xero_attachments_one_per_file_name() {
        let (fake, access, _) = connected().await;
        let id =
            create_invoice(&fake, &access, None).await.json()["Invoices"][0]["InvoiceID"].as_str().unwrap().to_owned();
        let upload = |name: &str, bytes: &'static [u8]| {
            let path = format!("Invoices/{id}/Attachments/{name}");
            send(api(&fake, reqwest::Method::PUT, &path, &access).header("Content-Type", "application/pdf").body(bytes))
        };
        let answer = upload("statement%202026-11.pdf", b"%PDF-1.7 first").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let attachment = &answer.json()["Attachments"][0];
        assert_eq!(
            (attachment["FileName"].as_str(), attachment["MimeType"].as_str(), attachment["ContentLength"].as_u64()),
            (Some("statement 2026-11.pdf"), Some("application/pdf"), Some(14))
        );
        assert!(attachment["Url"].as_str().unwrap().ends_with("/Attachments/statement%202026-11.pdf"));
        assert!(attachment["AttachmentID"].as_str().is_some_and(|a| a.len() == 36));
        assert_eq!(fake.invoice(&id).unwrap()["HasAttachments"], true);
        upload("statement%202026-11.pdf", b"%PDF-1.7 second").await;
        upload("notes.pdf", b"%PDF-1.7 notes").await;
        let stored = fake.attachments(&id);
        let names: Vec<_> =
            stored.iter().map(|(name, mime, bytes)| (name.as_str(), mime.as_str(), bytes.as_slice())).collect();
        assert_eq!(
            names,
            [
                ("statement 2026-11.pdf", "application/pdf", &b"%PDF-1.7 second"[..]),
                ("notes.pdf", "application/pdf", b"%PDF-1.7 notes")
            ]
        );
        let listed =
            send(api(&fake, reqwest::Method::GET, &format!("Invoices/{id}/Attachments"), &access)).await.json();
        assert_eq!(listed["Attachments"].as_array().map(Vec::len), Some(2));
        let unknown = api(&fake, reqwest::Method::POST, "Invoices/INV-9999/Attachments/a.pdf", &access).body("x");
        assert_eq!(send(unknown).await.status, 404);
    }

    #[tokio::test]
    async fn fakes_xero_payments_settle_invoices() {
        let (fake, access, _) = connected().await;
        let id =
            create_invoice(&fake, &access, None).await.json()["Invoices"][0]["InvoiceID"].as_str().unwrap().to_owned();
        let pay = |amount: Value, reference: &str| {
            let body = json!({ "Payments": [{
                "Invoice": { "InvoiceID": id }, "Account": { "Code": "090" }, "Date": "2026-12-01",
                "Amount": amount, "Reference": reference,
            }]});
            send(api(&fake, reqwest::Method::PUT, "Payments", &access).json(&body))
        };
        let part = pay(json!(10.0), "payout-1").await;
        assert_eq!(part.status, 200, "{}", part.body);
        let payment = &part.json()["Payments"][0];
        assert_eq!((payment["Status"].as_str(), payment["Amount"].as_f64()), (Some("AUTHORISED"), Some(10.0)));
        assert_eq!(
            (payment["Reference"].as_str(), payment["Date"].as_str()),
            (Some("payout-1"), Some("/Date(1796083200000+0000)/"))
        );
        assert_eq!((&payment["Invoice"]["InvoiceID"], &payment["Invoice"]["AmountDue"]), (&json!(id), &json!(3.33)));
        assert_eq!(fake.invoice(&id).unwrap()["Status"], "AUTHORISED");

        let over = pay(json!(3.34), "payout-2").await;
        assert_eq!(over.status, 400);
        assert_eq!(
            over.json()["Elements"][0]["ValidationErrors"][0]["Message"],
            "Payment amount exceeds the amount outstanding on this document"
        );
        let rest = pay(json!(3.33), "payout-2").await;
        assert_eq!(rest.status, 200, "{}", rest.body);
        let invoice = fake.invoice(&id).unwrap();
        assert_eq!(
            (invoice["Status"].as_str(), &invoice["AmountDue"], &invoice["AmountPaid"]),
            (Some("PAID"), &json!(0.0), &json!(13.33))
        );
        assert_eq!(invoice["Payments"].as_array().map(Vec::len), Some(2));
        let paid = pay(json!(0.01), "payout-3").await.json();
        assert_eq!(
            paid["Elements"][0]["ValidationErrors"][0]["Message"],
            "Payments can only be made against Authorised documents"
        );
        let to_sales =
            json!({ "Payments": [{ "Invoice": { "InvoiceID": id }, "Account": { "Code": "200" }, "Amount": 1 }] });
        let to_sales = send(api(&fake, reqwest::Method::PUT, "Payments", &access).json(&to_sales)).await.json();
        assert_eq!(to_sales["Elements"][0]["ValidationErrors"].as_array().map(Vec::len), Some(2));
        assert_eq!(fake.payments().len(), 2);
        let payment_id = fake.payments()[1]["PaymentID"].as_str().unwrap().to_owned();
        let got = send(api(&fake, reqwest::Method::GET, &format!("Payments/{payment_id}"), &access)).await;
        assert_eq!(got.json()["Payments"][0]["Amount"], 3.33);

        // A draft takes no payment; a Xero user voids an unpaid approved invoice.
        let draft = create_invoice(&fake, &access, None).await.json()["Invoices"][0]["InvoiceID"].clone();
        assert!(fake.set_invoice_status(draft.as_str().unwrap(), "DRAFT"));
        let body =
            json!({ "Payments": [{ "Invoice": { "InvoiceID": draft }, "Account": { "Code": "090" }, "Amount": 1 }] });
        assert_eq!(send(api(&fake, reqwest::Method::POST, "Payments", &access).json(&body)).await.status, 400);
        assert!(!fake.void_invoice(draft.as_str().unwrap()) && !fake.void_invoice(&id));
        assert!(fake.set_invoice_status(draft.as_str().unwrap(), "AUTHORISED"));
        assert!(fake.void_invoice(draft.as_str().unwrap()));
        assert_eq!(fake.invoice(draft.as_str().unwrap()).unwrap()["Status"], "VOIDED");
    }

    #[tokio::test]
    async fn fakes_xero_minute_and_concurrent_limits() {
        let (fake, access, _) = connected().await;
        fake.set_minute_limit(2);
        let get = || send(api(&fake, reqwest::Method::GET, "Invoices/INV-0001", &access));
        let first = get().await;
        assert_eq!((first.status, first.header("x-minlimit-remaining")), (404, Some("1")));
        assert_eq!(first.header("x-daylimit-remaining"), Some("4999"));
        assert_eq!(get().await.header("x-minlimit-remaining"), Some("0"));
        let limited = get().await;
        assert_eq!(limited.status, 429);
        assert_eq!(limited.header("x-rate-limit-problem"), Some("minute"));
        let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
        assert!((59..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(limited.json()["Title"], "Too Many Requests");
        // Identity is not limited.
        assert_eq!(refresh(&fake, "x").await.status, 400);

        let (fake, access, _) = connected().await;
        fake.set_response_delay(Duration::from_millis(600));
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..6 {
            calls.spawn(send(api(&fake, reqwest::Method::GET, "Invoices/INV-0001", &access)));
        }
        let mut statuses = Vec::new();
        while let Some(answer) = calls.join_next().await {
            let answer = answer.expect("a call");
            if answer.status == 429 {
                assert_eq!(
                    (answer.header("x-rate-limit-problem"), answer.header("retry-after")),
                    (Some("concurrent"), None)
                );
            }
            statuses.push(answer.status);
        }
        statuses.sort();
        assert_eq!(statuses, [404, 404, 404, 404, 404, 429]);
        fake.set_response_delay(Duration::ZERO);
        assert_eq!(send(api(&fake, reqwest::Method::GET, "Invoices/INV-0001", &access)).await.status, 404);
    }

    #[tokio::test]
    async fn fakes_xero_injected_failures_before_and_after_apply() {
        let (fake, access, _) = connected().await;
        fake.fail_next(1, 503);
        let unavailable = create_invoice(&fake, &access, Some("k1")).await;
        assert_eq!((unavailable.status, unavailable.json()["Status"].clone()), (503, json!(503)));
        assert!(fake.invoices().is_empty());
        fake.fail_next(1, 429);
        let limited = create_invoice(&fake, &access, Some("k1")).await;
        assert_eq!(
            (limited.status, limited.header("retry-after"), limited.header("x-rate-limit-problem")),
            (429, Some("1"), Some("minute"))
        );
        fake.fail_next(1, 500);
        assert_eq!(create_invoice(&fake, &access, Some("k1")).await.json()["Title"], "An error occurred");
        assert!(fake.invoices().is_empty());

        // Applied, then the answer is lost: the retry with the same key gets the first answer.
        fake.fail_next_after_apply(1, 500);
        let lost = create_invoice(&fake, &access, Some("k1")).await;
        assert_eq!(lost.status, 500);
        assert_eq!(fake.invoices().len(), 1);
        let retried = create_invoice(&fake, &access, Some("k1")).await;
        assert_eq!(retried.status, 200);
        assert_eq!(retried.json()["Invoices"][0]["InvoiceID"], fake.invoices()[0]["InvoiceID"]);
        assert_eq!(fake.invoices().len(), 1);
        let statuses: Vec<_> = fake.requests().iter().skip(1).map(|r| (r.method.clone(), r.status)).collect();
        let put = |status| ("PUT".to_owned(), status);
        assert_eq!(statuses, [put(503), put(429), put(500), put(500), put(200)]);
    }

    /// A webhook endpoint on a loopback port that checks `x-xero-signature` with `key`, as the
    /// vendor's endpoint must: 200 if it matches, else 401. Hands over each (signature, body).
    async fn endpoint(key: &'static str) -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, String)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/webhooks/xero", listener.local_addr().expect("an address"));
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.expect("accept");
                let (mut raw, mut chunk) = (Vec::new(), [0; 4096]);
                let (head, body) = loop {
                    if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                        let length: usize = header(&head, "content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                        if raw.len() >= end + 4 + length {
                            break (head, String::from_utf8_lossy(&raw[end + 4..]).into_owned());
                        }
                    }
                    let n = stream.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "the request ended early");
                    raw.extend_from_slice(&chunk[..n]);
                };
                let given = header(&head, "x-xero-signature").unwrap_or_default();
                let status = if given == signature(&body, key) { 200 } else { 401 };
                assert_eq!(header(&head, "content-type").as_deref(), Some("application/json"));
                let answer = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                stream.write_all(answer.as_bytes()).await.expect("answer");
                let _ = sender.send((given, body));
            }
        });
        (url, receiver)
    }

    fn header(head: &str, name: &str) -> Option<String> {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    }

    #[tokio::test]
    async fn fakes_xero_sends_signed_webhooks() {
        const KEY: &str = "webhook-key-Zm9vYmFy";
        let (fake, access, _) = connected().await;
        let (url, mut received) = endpoint(KEY).await;
        let mut next = async || {
            let request = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
            let (signature, body) = request.expect("a webhook in time").expect("the endpoint is up");
            (signature, serde_json::from_str::<Value>(&body).expect("JSON"))
        };

        assert_eq!(fake.send_intent_to_receive(&url, KEY, true).await, Ok(200));
        let (_, intent) = next().await;
        assert_eq!(intent["events"], json!([]));
        assert!(intent["entropy"].as_str().is_some_and(|e| e.len() == 20));
        assert_eq!(fake.send_intent_to_receive(&url, KEY, false).await, Ok(401));
        next().await;

        let id =
            create_invoice(&fake, &access, None).await.json()["Invoices"][0]["InvoiceID"].as_str().unwrap().to_owned();
        assert!(fake.void_invoice(&id));
        assert_eq!(fake.send_invoice_event(&url, KEY, &id).await, Ok(200));
        let (_, event) = next().await;
        assert_eq!((event["firstEventSequence"].as_u64(), event["lastEventSequence"].as_u64()), (Some(1), Some(1)));
        let first = &event["events"][0];
        assert_eq!(
            (first["resourceId"].as_str(), first["eventCategory"].as_str(), first["eventType"].as_str()),
            (Some(id.as_str()), Some("INVOICE"), Some("UPDATE"))
        );
        assert_eq!(first["resourceUrl"], format!("https://api.xero.com/api.xro/2.0/Invoices/{id}"));
        assert_eq!(
            (first["tenantId"].as_str(), first["tenantType"].as_str()),
            (Some(fake.tenant_id()), Some("ORGANISATION"))
        );
        assert!(first["eventDateUtc"].as_str().is_some_and(|d| d.starts_with("20") && d.len() == 23));
        // What the endpoint then reads from the API.
        let got = send(api(&fake, reqwest::Method::GET, &format!("Invoices/{id}"), &access)).await.json();
        assert_eq!(got["Invoices"][0]["Status"], "VOIDED");

        assert_eq!(fake.send_invoice_event(&url, "another-key", &id).await, Ok(401));
        let (_, second) = next().await;
        assert_eq!(second["firstEventSequence"], 2);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("address");
        assert!(fake.send_invoice_event(&format!("http://{closed}/x"), KEY, &id).await.is_err());
    }
}
