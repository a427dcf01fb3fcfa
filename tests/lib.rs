//! The test harness: each test gets its own stack (table, buckets, secrets prefix and
//! gateway port) inside one moto server, so tests run in parallel without sharing state.
//! Requests go over real HTTP through the local gateway, as a frontend's would.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_dynamodb::types::AttributeValue;
use bestow::App;
use bestow::store::keys::{GLOBAL_PREFIX, PLATFORM_PREFIX, TENANT_PREFIX, belongs_to_vendor};
use bestow_infra::devtoken::{DevKeys, DevUser};
use bestow_infra::fakes::shopify::ShopifyFake;
use bestow_infra::fakes::stripe::StripeFake;
use bestow_infra::fakes::xero::XeroFake;
use bestow_infra::gateway::Gateway;
use bestow_infra::provision::LocalNames;
use bestow_infra::stack::{LocalBilling, LocalShopify, LocalStack, LocalXero, StackOptions};
use serde_json::Value;

pub use reqwest::Method;

/// The Shopify app the test stacks install (the fake knows it; the stack stores it as the
/// platform secret).
pub const SHOPIFY_API_KEY: &str = "bestow-test-app";
pub const SHOPIFY_API_SECRET: &str = "shpss_test_app_secret_0123456789";

/// The platform's Xero app in the test stacks (the fake knows the client; the stack stores
/// all three as the platform secret).
pub const XERO_CLIENT_ID: &str = "BESTOWTESTXEROCLIENT";
pub const XERO_CLIENT_SECRET: &str = "xero_test_client_secret_0123456789";
pub const XERO_WEBHOOK_KEY: &str = "xero_test_webhook_key_0123456789";

/// The platform's own Stripe account (vendor plans) in the test stacks, and its plans' prices
/// (plan, price id, monthly amount in EUR cents), seeded into the Stripe fake.
pub const BILLING_SECRET_KEY: &str = "sk_test_platform_billing_0123456789";
pub const BILLING_WEBHOOK_SECRET: &str = "whsec_platform_billing_0123456789";
pub const PLAN_PRICES: &[(&str, &str, i64)] =
    &[("starter", "price_starter_monthly", 4_900), ("growth", "price_growth_monthly", 19_900)];

/// Every log line any test's request wrote, as JSON lines.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = CaptureWriter(Arc::clone(&buffer));
        // SAFETY: set once, before any thread reads the environment through tracing.
        unsafe {
            std::env::set_var("RUST_LOG", "debug,aws=info,aws_smithy_runtime=info,hyper=info,h2=info,rustls=info")
        };
        bestow::telemetry::init_with_writer(move || writer.clone());
        buffer
    })
    .clone()
}

/// Everything logged so far, by every test of this binary.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&capture_logs().lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

pub struct Stack {
    pub base: String,
    pub keys: DevKeys,
    pub app: App,
    pub names: LocalNames,
    pub sdk: aws_config::SdkConfig,
    pub local: LocalStack,
    /// This stack's own Stripe, over real HTTP.
    pub stripe: StripeFake,
    /// This stack's own Shopify (every shop of it), over real HTTP; the app's credentials are
    /// [`SHOPIFY_API_KEY`] and [`SHOPIFY_API_SECRET`].
    pub shopify: ShopifyFake,
    /// This stack's own Xero organisation, over real HTTP.
    pub xero: XeroFake,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    pollers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
        self.pollers.iter().for_each(|p| p.abort());
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn etag(&self) -> String {
        self.headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// Asserts an RFC 9457 problem with `status` and returns its `type`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "expected {status}, got {}: {}", self.status, self.text);
        assert_eq!(self.content_type(), "application/problem+json", "{}", self.text);
        assert_eq!(self.json["status"], status, "{}", self.text);
        let kind = self.json["type"].as_str().unwrap_or_default().to_owned();
        assert!(kind.starts_with("https://bestow.dev/problems/"), "{}", self.text);
        assert!(self.json["title"].is_string() && self.json["detail"].is_string(), "{}", self.text);
        kind
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "expected {status}, got {}: {}", self.status, self.text);
        self
    }
}

/// A request being built.
pub struct Call<'a> {
    stack: &'a Stack,
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
}

impl Call<'_> {
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }
    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.headers.push(("content-type".into(), "application/json".into()));
        self
    }
    pub fn raw(mut self, body: impl Into<Vec<u8>>, content_type: &str) -> Self {
        self.body = Some(body.into());
        self.headers.push(("content-type".into(), content_type.into()));
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub async fn send(self) -> Reply {
        let mut request = self.stack.http.request(self.method, format!("{}{}", self.stack.base, self.path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = self.body {
            request = request.body(body);
        }
        let response = request.send().await.expect("the local gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, json }
    }
}

impl Stack {
    /// A fresh stack in the moto server named by `AWS_ENDPOINT_URL` (`infra/bestow test`
    /// starts one and sets it).
    pub async fn start() -> Stack {
        capture_logs();
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .expect("AWS_ENDPOINT_URL is not set: run the suite with `infra/bestow test`, which starts moto");
        assert!(
            endpoint.contains("127.0.0.1") || endpoint.contains("localhost"),
            "tests only run against a local emulator"
        );
        let prefix = format!("bestow-test-{}", &bestow::store::ids::new_id()[14..]);
        let stripe = StripeFake::start().await.expect("the Stripe fake starts");
        let shopify = ShopifyFake::start(SHOPIFY_API_KEY, SHOPIFY_API_SECRET).await.expect("the Shopify fake starts");
        let xero = XeroFake::start(XERO_CLIENT_ID, XERO_CLIENT_SECRET).await.expect("the Xero fake starts");
        for (plan, price, amount) in PLAN_PRICES {
            stripe.add_price(price, *amount, "eur", "month", &format!("Bestow {plan}"));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let stack = LocalStack::provision(StackOptions {
            secrets_prefix: Some(format!("bestow/{prefix}")),
            prefix,
            stage: "test".into(),
            // Retries come back after 2 s instead of the template's 60.
            visibility_override: Some(2),
            counter: None,
            stripe_api_base: Some(stripe.base_url().to_owned()),
            shopify: Some(LocalShopify {
                api_base: shopify.base_url().to_owned(),
                api_key: SHOPIFY_API_KEY.to_owned(),
                api_secret: SHOPIFY_API_SECRET.to_owned(),
            }),
            xero: Some(LocalXero {
                base: xero.base_url().to_owned(),
                client_id: XERO_CLIENT_ID.to_owned(),
                client_secret: XERO_CLIENT_SECRET.to_owned(),
                webhook_key: XERO_WEBHOOK_KEY.to_owned(),
            }),
            billing: Some(LocalBilling {
                secret_key: BILLING_SECRET_KEY.to_owned(),
                webhook_secret: BILLING_WEBHOOK_SECRET.to_owned(),
                plan_prices: PLAN_PRICES
                    .iter()
                    .map(|(plan, price, _)| format!("{plan}={price}"))
                    .collect::<Vec<_>>()
                    .join(","),
            }),
            public_base_url: Some(base.clone()),
        })
        .await
        .expect("provisioning from template.yaml");
        let pollers = stack.spawn_pollers();
        let app = stack.app.clone();
        let keys = DevKeys::random();
        let gateway = Arc::new(Gateway::new(app.clone(), keys.clone(), bestow::routes::ALL));
        let server = tokio::spawn(gateway.serve(listener));
        Stack {
            base,
            keys,
            app,
            names: stack.names.clone(),
            sdk: stack.sdk.clone(),
            http: reqwest::Client::new(),
            server,
            pollers,
            local: stack,
            stripe,
            shopify,
            xero,
        }
    }

    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call { stack: self, method, path: path.to_owned(), token: None, body: None, headers: Vec::new() }
    }

    pub fn admin(&self) -> String {
        self.keys.issue(&DevUser { sub: "test-admin", group: "platform_admin", vendor_id: None }, 600)
    }

    pub fn staff(&self, vendor: &str, role: &str) -> String {
        let sub = format!("test-{vendor}-{role}");
        self.keys.issue(&DevUser { sub: &sub, group: role, vendor_id: Some(vendor) }, 600)
    }

    /// Creates a vendor through the API and returns its owner's token.
    pub async fn vendor(&self, id: &str) -> String {
        self.call(Method::POST, "/vendors")
            .token(&self.admin())
            .json(&serde_json::json!({
                "id": id, "name": format!("Vendor {id}"), "contact_email": format!("ops@{id}.example"),
                "country": "DE", "currency": "EUR", "timezone": "Europe/Berlin"
            }))
            .send()
            .await
            .assert_status(201);
        self.staff(id, "owner")
    }

    /// Every item of this stack's table (a Scan: test-only, never on a request path).
    pub async fn all_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .app
                .table
                .client()
                .scan()
                .table_name(&self.names.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// Items whose keys break the tenancy layout: a tenant item (one with `vendor_id`) whose
    /// PK or GSI1PK does not start with its own vendor's prefix, or an item under no known
    /// prefix at all.
    pub async fn key_violations(&self) -> Vec<String> {
        let s =
            |item: &HashMap<String, AttributeValue>, name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let mut violations = Vec::new();
        for item in self.all_items().await {
            let pk = s(&item, "PK").unwrap_or_default();
            match s(&item, "vendor_id") {
                Some(vendor) => {
                    for key in ["PK", "GSI1PK"] {
                        if let Some(value) = s(&item, key).filter(|v| !belongs_to_vendor(v, &vendor)) {
                            violations.push(format!("{key}={value} of vendor {vendor}"));
                        }
                    }
                }
                None if pk.starts_with(PLATFORM_PREFIX) || pk.starts_with(GLOBAL_PREFIX) => {}
                None => violations.push(format!("PK={pk} has no vendor_id and no global prefix")),
            }
            if pk.starts_with(TENANT_PREFIX) && s(&item, "vendor_id").is_none() {
                violations.push(format!("tenant partition {pk} holds an item without vendor_id"));
            }
        }
        violations
    }
}

/// The SMTP sink the suite sends to (`infra/bestow test` starts it).
pub fn smtp_sink_settings(username: &str, password: &str) -> Value {
    let port: u16 = std::env::var("BESTOW_TEST_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("BESTOW_TEST_SMTP_PORT is not set: run the suite with `infra/bestow test`, which starts the SMTP sink");
    serde_json::json!({"host": "127.0.0.1", "port": port, "username": username, "password": password,
        "from_email": format!("gifts@{username}.example"), "from_name": username, "security": "none"})
}

/// Every message the SMTP sink accepted for `recipient`.
pub fn mail_for(recipient: &str) -> Vec<Value> {
    let dir = std::env::var("BESTOW_TEST_MAILDIR").expect("BESTOW_TEST_MAILDIR is set by infra/bestow test");
    let mut messages: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name().to_string_lossy().ends_with(".json")
                        && !e.file_name().to_string_lossy().starts_with('.')
                })
                .filter_map(|e| {
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    Some((e.file_name().to_string_lossy().into_owned(), serde_json::from_str(&text).ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    messages.sort_by(|a, b| a.0.cmp(&b.0));
    messages
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m: &Value| m["rcpt_tos"].as_array().is_some_and(|r| r.iter().any(|a| a == recipient)))
        .collect()
}

/// Waits until `condition` holds (polling every 100 ms), or panics after `seconds`.
pub async fn eventually<T>(seconds: u64, what: &str, mut condition: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out after {seconds}s waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
