//! The Xero client over `reqwest`: OAuth 2.0 (authorize URL, code exchange, refresh, the
//! connections endpoint) and the Accounting API calls Bestow makes (invoices, their
//! attachments, payments). Every write carries Xero's `Idempotency-Key`, so a retry after a
//! lost answer never makes a second invoice or payment; 429s wait for `Retry-After`, 5xx and
//! lost connections back off with jitter.

use crate::integrations::{backoff, without_url};
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::integrations::secrets::{PlatformSecret, Redacted};

/// A single Xero call's timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TRIES: u32 = 4;
/// The longest `Retry-After` waited for inside one job run; longer (the daily limit) returns
/// the job to its queue instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// What Bestow asks of an organisation: invoices and payments, contacts, attachments, and
/// `offline_access` for a refresh token.
pub const SCOPES: &str =
    "openid profile email accounting.transactions accounting.contacts accounting.attachments offline_access";

/// The platform's Xero app (`<prefix>/platform/xero-app`): its OAuth client and the key that
/// signs its webhooks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct XeroApp {
    pub client_id: String,
    pub client_secret: Redacted,
    pub webhook_key: Redacted,
}

impl PlatformSecret for XeroApp {
    const NAME: &'static str = "xero-app";
}

/// The connection's current token pair (`<prefix>/platform/xero-tokens`). Each refresh writes
/// a new version; the connection item names the version in use.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct XeroTokens {
    pub access_token: Redacted,
    pub refresh_token: Redacted,
    /// When the access token stops working (epoch seconds).
    pub expires_at: i64,
}

impl PlatformSecret for XeroTokens {
    const NAME: &'static str = "xero-tokens";
}

#[derive(Debug, thiserror::Error)]
pub enum XeroError {
    /// The refresh token (or code) was refused: the connection must be made again.
    #[error("Xero refused the grant: {0}")]
    InvalidGrant(String),
    /// The access token was refused (expired or replaced by a refresh).
    #[error("Xero refused the access token")]
    Unauthorized,
    /// Xero refused the request itself; retrying it cannot help.
    #[error("Xero refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// Over a rate limit for longer than one run should wait (`problem`: minute, day…).
    #[error("Xero's {problem} rate limit: retry after {retry_after_s} s")]
    RateLimited { problem: String, retry_after_s: u64 },
    #[error("Xero is unavailable: {0}")]
    Unavailable(String),
}

impl XeroError {
    /// Worth running the job again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable(_) | Self::Unauthorized)
    }
}

/// What the token endpoint answers.
#[derive(Clone, Debug, Deserialize)]
pub struct TokenSet {
    pub access_token: Redacted,
    pub refresh_token: Redacted,
    pub expires_in: i64,
}

impl TokenSet {
    pub fn into_tokens(self, now_epoch_s: i64) -> XeroTokens {
        XeroTokens {
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_at: now_epoch_s + self.expires_in,
        }
    }
}

/// One organisation the user connected (`GET /connections`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XeroConnection {
    pub tenant_id: String,
    pub tenant_type: String,
    pub tenant_name: Option<String>,
}

/// Where Xero is: `login` serves the consent page, `identity` the token endpoint, `api` the
/// connections and the Accounting API. Locally all three are the Xero fake.
#[derive(Clone, Debug)]
pub struct XeroEndpoints {
    pub login: String,
    pub identity: String,
    pub api: String,
}

impl Default for XeroEndpoints {
    fn default() -> Self {
        Self {
            login: "https://login.xero.com".into(),
            identity: "https://identity.xero.com".into(),
            api: "https://api.xero.com".into(),
        }
    }
}

/// The consent page to send the platform's accountant to.
pub fn authorize_url(endpoints: &XeroEndpoints, client_id: &str, redirect_uri: &str, state: &str) -> String {
    let query: String = url_encode(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPES),
        ("state", state),
    ]);
    format!("{}/identity/connect/authorize?{query}", endpoints.login)
}

fn url_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
}

/// Posts a grant to the token endpoint. A refused grant is `InvalidGrant`, never retried: the
/// same refresh token would be refused again (and a used one must not be replayed blindly).
async fn token_request(
    http: &reqwest::Client,
    endpoints: &XeroEndpoints,
    app: &XeroApp,
    form: &[(&str, &str)],
) -> Result<TokenSet, XeroError> {
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", app.client_id, app.client_secret.expose()).as_bytes());
    let url = format!("{}/connect/token", endpoints.identity);
    let mut last = String::new();
    for attempt in 0..MAX_TRIES {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let sent = http
            .post(&url)
            .header("Authorization", format!("Basic {basic}"))
            .form(form)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // No answer: Xero keeps a used refresh token valid for 30 minutes, so trying the
            // same one again is what Xero advises.
            Err(err) => {
                last = without_url(&err, "<xero>");
                continue;
            }
        };
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| XeroError::Unavailable(without_url(&e, "<xero>")))?;
        match status {
            200..=299 => {
                return serde_json::from_slice(&body)
                    .map_err(|e| XeroError::Unavailable(format!("unexpected token answer: {e}")));
            }
            400 | 401 => {
                let error = serde_json::from_slice::<OAuthError>(&body).map(|e| e.error).unwrap_or_default();
                return Err(XeroError::InvalidGrant(if error.is_empty() { format!("HTTP {status}") } else { error }));
            }
            _ => last = format!("token endpoint: HTTP {status}"),
        }
    }
    Err(XeroError::Unavailable(format!("after {MAX_TRIES} tries: {last}")))
}

pub async fn exchange_code(
    http: &reqwest::Client,
    endpoints: &XeroEndpoints,
    app: &XeroApp,
    code: &str,
    redirect_uri: &str,
) -> Result<TokenSet, XeroError> {
    token_request(
        http,
        endpoints,
        app,
        &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)],
    )
    .await
}

pub async fn refresh(
    http: &reqwest::Client,
    endpoints: &XeroEndpoints,
    app: &XeroApp,
    refresh_token: &Redacted,
) -> Result<TokenSet, XeroError> {
    token_request(http, endpoints, app, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())])
        .await
}

/// The `authentication_event_id` claim of an access token (a JWT; read, not verified: it only
/// narrows which connections to list, and Xero checks the token itself).
pub fn auth_event_id(access_token: &Redacted) -> Option<String> {
    let payload = access_token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("authentication_event_id")?.as_str().map(str::to_owned)
}

/// The organisations the access token reaches; with `auth_event_id`, only those the user
/// connected in that consent (Xero's `authEventId` filter), so a user who had connected other
/// organisations before does not get one of those.
pub async fn connections(
    http: &reqwest::Client,
    endpoints: &XeroEndpoints,
    access_token: &Redacted,
) -> Result<Vec<XeroConnection>, XeroError> {
    let query = auth_event_id(access_token).map(|id| format!("?authEventId={id}")).unwrap_or_default();
    let response = http
        .get(format!("{}/connections{query}", endpoints.api))
        .bearer_auth(access_token.expose())
        .header("Accept", "application/json")
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| XeroError::Unavailable(without_url(&e, "<xero>")))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| XeroError::Unavailable(without_url(&e, "<xero>")))?;
    match status {
        200..=299 => serde_json::from_slice(&body).map_err(|e| XeroError::Unavailable(format!("connections: {e}"))),
        401 => Err(XeroError::Unauthorized),
        _ => Err(XeroError::Unavailable(format!("connections: HTTP {status}"))),
    }
}

// ---------------------------------------------------------------- Accounting API

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewInvoice {
    /// `ACCREC`: a sales invoice of the platform's, to the vendor.
    #[serde(rename = "Type")]
    pub invoice_type: String,
    pub contact: ContactRef,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub due_date: String,
    pub reference: String,
    pub currency_code: String,
    /// `AUTHORISED`: ready to be paid, so a payment can be recorded against it.
    pub status: String,
    pub line_amount_types: String,
    pub line_items: Vec<LineItem>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContactRef {
    pub name: String,
    /// Bestow's vendor id: Xero matches an existing contact by it before the name.
    pub contact_number: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LineItem {
    pub description: String,
    /// Decimal text in Xero's JSON is a number: these are exact to the cent as `f64`s of
    /// amounts below 2^53 minor units.
    pub quantity: f64,
    pub unit_amount: f64,
    pub account_code: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewPayment {
    pub invoice: InvoiceRef,
    pub account: AccountRef,
    pub date: String,
    pub amount: f64,
    pub reference: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct InvoiceRef {
    #[serde(rename = "InvoiceID")]
    pub invoice_id: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountRef {
    pub code: String,
}

/// An invoice as far as Bestow reads it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Invoice {
    #[serde(rename = "InvoiceID")]
    pub invoice_id: String,
    pub invoice_number: Option<String>,
    pub status: String,
    pub total: Option<f64>,
    pub amount_due: Option<f64>,
    pub amount_paid: Option<f64>,
    pub currency_code: Option<String>,
    pub reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Invoices {
    invoices: Vec<Invoice>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Payment {
    #[serde(rename = "PaymentID")]
    pub payment_id: String,
    pub amount: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Payments {
    payments: Vec<Payment>,
}

/// What one client did, for the job's summary and the tests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallStats {
    pub requests: u32,
    pub rate_limited: u32,
    pub retried: u32,
}

/// One organisation, with an access token. Cheap to build per job.
pub struct XeroClient {
    http: reqwest::Client,
    api_base: String,
    access_token: Redacted,
    tenant_id: String,
    stats: std::sync::Mutex<CallStats>,
}

enum Body<'a> {
    None,
    Json(serde_json::Value),
    Bytes(&'a [u8], &'a str),
}

impl XeroClient {
    pub fn new(http: reqwest::Client, endpoints: &XeroEndpoints, access_token: Redacted, tenant_id: &str) -> Self {
        Self {
            http,
            api_base: format!("{}/api.xro/2.0", endpoints.api),
            access_token,
            tenant_id: tenant_id.to_owned(),
            stats: std::sync::Mutex::default(),
        }
    }

    pub fn stats(&self) -> CallStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn count(&self, change: impl FnOnce(&mut CallStats)) {
        change(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Creates an `AUTHORISED` invoice; a retry with the same key answers the first one.
    pub async fn create_invoice(&self, invoice: &NewInvoice, idempotency_key: &str) -> Result<Invoice, XeroError> {
        let body = serde_json::json!({ "Invoices": [invoice] });
        let answer: Invoices =
            self.call(reqwest::Method::PUT, "/Invoices", Body::Json(body), Some(idempotency_key)).await?;
        answer.invoices.into_iter().next().ok_or_else(|| XeroError::Unavailable("no invoice in the answer".into()))
    }

    pub async fn invoice(&self, invoice_id: &str) -> Result<Invoice, XeroError> {
        let answer: Invoices =
            self.call(reqwest::Method::GET, &format!("/Invoices/{invoice_id}"), Body::None, None).await?;
        answer.invoices.into_iter().next().ok_or_else(|| XeroError::Unavailable("no invoice in the answer".into()))
    }

    /// Attaches a file (Xero keeps one per name, so attaching again replaces it).
    pub async fn attach(
        &self,
        invoice_id: &str,
        file_name: &str,
        mime: &str,
        bytes: &[u8],
        idempotency_key: &str,
    ) -> Result<(), XeroError> {
        let path = format!("/Invoices/{invoice_id}/Attachments/{file_name}");
        let _: serde_json::Value =
            self.call(reqwest::Method::PUT, &path, Body::Bytes(bytes, mime), Some(idempotency_key)).await?;
        Ok(())
    }

    pub async fn create_payment(&self, payment: &NewPayment, idempotency_key: &str) -> Result<Payment, XeroError> {
        let body = serde_json::json!({ "Payments": [payment] });
        let answer: Payments =
            self.call(reqwest::Method::PUT, "/Payments", Body::Json(body), Some(idempotency_key)).await?;
        answer.payments.into_iter().next().ok_or_else(|| XeroError::Unavailable("no payment in the answer".into()))
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body<'_>,
        idempotency_key: Option<&str>,
    ) -> Result<T, XeroError> {
        let url = format!("{}{path}", self.api_base);
        let mut last = String::new();
        for attempt in 0..MAX_TRIES {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.access_token.expose())
                .header("xero-tenant-id", &self.tenant_id)
                .header("Accept", "application/json")
                .timeout(REQUEST_TIMEOUT);
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            request = match &body {
                Body::None => request,
                Body::Json(json) => request.json(json),
                Body::Bytes(bytes, mime) => request.header("Content-Type", *mime).body(bytes.to_vec()),
            };
            self.count(|s| {
                s.requests += 1;
                if attempt > 0 {
                    s.retried += 1;
                }
            });
            let response = match request.send().await {
                Ok(r) => r,
                // Lost: the idempotency key makes sending it again safe.
                Err(err) => {
                    last = format!("{path}: {}", without_url(&err, "<xero>"));
                    tokio::time::sleep(backoff(attempt + 1)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let retry_after =
                response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            let problem = response
                .headers()
                .get("x-rate-limit-problem")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("minute")
                .to_ascii_lowercase();
            let bytes = response.bytes().await.map_err(|e| XeroError::Unavailable(without_url(&e, "<xero>")))?;
            match status {
                200..=299 => {
                    return serde_json::from_slice(&bytes)
                        .map_err(|e| XeroError::Unavailable(format!("{path}: unexpected answer: {e}")));
                }
                401 => return Err(XeroError::Unauthorized),
                429 => {
                    self.count(|s| s.rate_limited += 1);
                    let wait = Duration::from_secs(retry_after.unwrap_or(1).max(1));
                    if wait > MAX_RETRY_AFTER || attempt + 1 == MAX_TRIES {
                        return Err(XeroError::RateLimited { problem, retry_after_s: wait.as_secs() });
                    }
                    tokio::time::sleep(wait).await;
                    last = format!("{path}: 429 ({problem} limit)");
                }
                500..=599 => {
                    last = format!("{path}: HTTP {status}");
                    tokio::time::sleep(backoff(attempt + 1)).await;
                }
                _ => return Err(XeroError::Rejected { status, message: error_message(&bytes) }),
            }
        }
        Err(XeroError::Unavailable(format!("after {MAX_TRIES} tries: {last}")))
    }
}

/// Xero's validation messages, joined; the status alone when the body says nothing.
fn error_message(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::from_utf8_lossy(body).chars().take(200).collect();
    };
    let mut messages: Vec<String> = value["Elements"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["ValidationErrors"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["Message"].as_str().map(str::to_owned))
        .collect();
    if messages.is_empty() {
        messages.extend(["Message", "Detail", "Title"].iter().find_map(|k| value[k].as_str().map(str::to_owned)));
    }
    messages.join("; ")
}

/// A minor-unit amount as the decimal number Xero's JSON carries.
pub fn amount(amount_minor: i64, currency: &str) -> f64 {
    let digits = crate::shopify::model::minor_digits(currency);
    amount_minor as f64 / 10f64.powi(digits as i32)
}

/// Xero's decimal back to minor units, rounded to the nearest.
pub fn minor(amount: f64, currency: &str) -> i64 {
    let digits = crate::shopify::model::minor_digits(currency);
    (amount * 10f64.powi(digits as i32)).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_asks_for_offline_access_and_escapes() {
        let url = authorize_url(&XeroEndpoints::default(), "client", "https://x.example/xero/callback", "s t");
        assert!(
            url.starts_with("https://login.xero.com/identity/connect/authorize?response_type=code&client_id=client")
        );
        assert!(url.contains("redirect_uri=https%3A%2F%2Fx.example%2Fxero%2Fcallback"));
        assert!(url.contains("offline_access") && url.contains("state=s%20t"));
    }

    #[test]
    fn the_auth_event_is_read_from_the_access_token() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"authentication_event_id":"ae-1"}"#);
        assert_eq!(auth_event_id(&Redacted::new(format!("h.{claims}.s"))).as_deref(), Some("ae-1"));
        assert_eq!(auth_event_id(&Redacted::new("opaque")), None);
    }

    #[test]
    fn amounts_convert_exactly_to_the_cent() {
        assert_eq!(amount(12_345, "EUR"), 123.45);
        assert_eq!(minor(123.45, "EUR"), 12_345);
        assert_eq!(minor(0.1 + 0.2, "EUR"), 30);
        assert_eq!(amount(500, "JPY"), 500.0);
    }

    #[test]
    fn validation_messages_are_read_from_xero_errors() {
        let body = br#"{"ErrorNumber":10,"Type":"ValidationException","Message":"A validation exception occurred","Elements":[{"ValidationErrors":[{"Message":"Account code '9' is not a valid code"}]}]}"#;
        assert_eq!(error_message(body), "Account code '9' is not a valid code");
        assert_eq!(error_message(br#"{"Title":"Forbidden"}"#), "Forbidden");
    }
}
