//! A local HTTP fake of the Shopify Admin API (<https://shopify.dev/docs/api/admin-graphql>) for
//! several shops at once: every URL starts with the shop's domain
//! (`{base_url}/acme.myshopify.com/admin/api/2026-10/graphql.json`), since the real API lives on
//! each shop's own host. It serves the OAuth authorization-code grant, the GraphQL operations
//! the Bestow client sends (dispatched on `operationName`, not parsed), Shopify's leaky-bucket
//! query cost, and the webhooks Shopify sends when a merchant changes something, which the
//! test triggers with the helpers ([`ShopifyFake::update_product`], …).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The API version of the webhooks (the client pins it too).
pub const API_VERSION: &str = "2026-10";

/// The first number of the one id counter (all GIDs share it, so no two objects collide).
const FIRST_ID: u64 = 7_000_000_001;
/// The logical clock's start, 2026-11-26T10:00:00Z: timestamps never depend on wall time.
const CLOCK_START: i64 = 1_795_687_200;
/// The `variants(first: …)` of product queries without a `variantsFirst` variable (Shopify's
/// cost counts it, whatever the product has).
const VARIANTS_FIRST: usize = 100;
/// The one location of every shop.
const LOCATION_ID: u64 = 24_826_418;
const INVALID_TOKEN: &str = "[API] Invalid API key or access token (unrecognized login or wrong password)";
const WEBHOOK_USER_AGENT: &str = "Shopify-Captain-Hook";
/// The waits before each retry of a failed delivery (Shopify's back-off, in seconds).
const WEBHOOK_RETRY_WAITS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)];
/// The topics `WebhookSubscriptionCreate` accepts.
const TOPICS: [&str; 7] = [
    "PRODUCTS_CREATE",
    "PRODUCTS_UPDATE",
    "PRODUCTS_DELETE",
    "INVENTORY_LEVELS_UPDATE",
    "ORDERS_FULFILLED",
    "ORDERS_CANCELLED",
    "APP_UNINSTALLED",
];

/// A running fake: serves on a loopback port until dropped.
pub struct ShopifyFake {
    base_url: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<std::io::Result<()>>,
    /// The runtime the fake was started on, which delivers the webhooks.
    runtime: Handle,
}

/// One GraphQL request as the fake received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedGraphql {
    pub shop: String,
    /// The `operationName` ("" when missing).
    pub operation: String,
    pub variables: Value,
    pub status: u16,
    /// Answered `THROTTLED` (the bucket lacked the requested cost).
    pub throttled: bool,
}

/// One webhook delivery attempt (a failed delivery is retried: one record per attempt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The `X-Shopify-Webhook-Id`, the same on each attempt.
    pub webhook_id: String,
    /// Lowercase slash form, e.g. `products/update`.
    pub topic: String,
    pub shop: String,
    pub url: String,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why there was no answer (connection refused, timeout, …).
    pub error: Option<String>,
}

/// A webhook as Shopify would send it: its headers (with `X-Shopify-Hmac-Sha256`) and raw body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedWebhook {
    pub topic: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SignedWebhook {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A product as the fake keeps it. Ids of 0 (new options, values, variants, inventory items)
/// get fresh ids when the product is added or updated; values a variant selects are added to
/// its options if missing.
#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    pub id: u64,
    pub title: String,
    pub handle: String,
    pub description_html: String,
    /// `ACTIVE`, `DRAFT` or `ARCHIVED`.
    pub status: String,
    pub tags: Vec<String>,
    /// Unix seconds of the logical clock.
    pub updated_at: i64,
    pub options: Vec<ProductOption>,
    pub variants: Vec<Variant>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProductOption {
    pub id: u64,
    pub name: String,
    pub values: Vec<OptionValue>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OptionValue {
    pub id: u64,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub id: u64,
    /// The selected value of each option, in option order (the title is these joined by " / ").
    pub options: Vec<String>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    /// A decimal string in the shop's currency, e.g. "12.50".
    pub price: String,
    pub compare_at_price: Option<String>,
    /// `DENY` or `CONTINUE` (selling when out of stock).
    pub inventory_policy: String,
    pub inventory_quantity: i64,
    pub inventory_item_id: u64,
    pub tracked: bool,
    pub weight_grams: f64,
    pub updated_at: i64,
}

impl Product {
    /// A new product with one variant per combination of the options' values (no options: the
    /// single "Default Title" variant Shopify makes), priced 10.00 with 10 in stock.
    pub fn new(title: &str, options: &[(&str, &[&str])]) -> Product {
        let mut options: Vec<(&str, Vec<&str>)> = options.iter().map(|(n, v)| (*n, v.to_vec())).collect();
        if options.is_empty() {
            options.push(("Title", vec!["Default Title"]));
        }
        let mut combinations: Vec<Vec<String>> = vec![Vec::new()];
        for (_, values) in &options {
            let extend = |c: Vec<String>| values.iter().map(move |v| [c.clone(), vec![v.to_string()]].concat());
            combinations = combinations.into_iter().flat_map(extend).collect();
        }
        let lowercase = title.to_lowercase();
        let words: Vec<&str> = lowercase.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let named = |name: &&str| OptionValue { id: 0, name: name.to_string() };
        Product {
            id: 0,
            title: title.to_owned(),
            handle: words.join("-"),
            description_html: String::new(),
            status: "ACTIVE".to_owned(),
            tags: Vec::new(),
            updated_at: 0,
            options: options
                .iter()
                .map(|(name, values)| ProductOption {
                    id: 0,
                    name: name.to_string(),
                    values: values.iter().map(named).collect(),
                })
                .collect(),
            variants: combinations
                .into_iter()
                .map(|options| Variant {
                    id: 0,
                    options,
                    sku: None,
                    barcode: None,
                    price: "10.00".to_owned(),
                    compare_at_price: None,
                    inventory_policy: "DENY".to_owned(),
                    inventory_quantity: 10,
                    inventory_item_id: 0,
                    tracked: true,
                    weight_grams: 250.0,
                    updated_at: 0,
                })
                .collect(),
        }
    }
}

#[derive(Default)]
struct State {
    api_key: String,
    api_secret: String,
    shops: BTreeMap<String, Shop>,
    ids: Ids,
    /// (maximum, restore rate) of shops added from now on.
    throttle: (f64, f64),
    requests: Vec<RecordedGraphql>,
    /// (status, Retry-After seconds) of the next GraphQL answers.
    failures: VecDeque<(u16, f64)>,
    throttled: usize,
    token_exchanges: usize,
    token_refreshes: usize,
    /// How long an expiring access token lives (`expiring=1` exchanges; Shopify: 1 hour).
    token_lifetime: std::time::Duration,
    /// Webhooks made under the lock, sent once it is released.
    outbox: Vec<Outgoing>,
    deliveries: Vec<Delivery>,
}

/// The id counter and the logical clock, apart from the shops so both can be borrowed at once.
#[derive(Default)]
struct Ids {
    next: u64,
    clock: i64,
}

impl Ids {
    fn next(&mut self) -> u64 {
        self.next += 1;
        self.next - 1
    }

    /// A second strictly later than any before.
    fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }
}

struct Shop {
    id: u64,
    domain: String,
    currency: String,
    tokens: Vec<String>,
    /// Expiring access tokens → when they stop working.
    expiries: HashMap<String, std::time::Instant>,
    /// Valid refresh tokens → the scope they grant. A refresh replaces the one it used.
    refresh_tokens: HashMap<String, String>,
    /// Issued authorization codes, not yet exchanged → their scope.
    codes: HashMap<String, String>,
    products: BTreeMap<u64, Product>,
    orders: Vec<Value>,
    subscriptions: Vec<Value>,
    bucket: Bucket,
}

impl Shop {
    /// The shop's name, from its domain (`acme.myshopify.com` → `acme`).
    fn handle(&self) -> &str {
        self.domain.split('.').next().unwrap_or_default()
    }

    fn variant_mut(&mut self, gid: &str) -> Option<(&mut Product, usize)> {
        let id = gid_number(gid, "ProductVariant")?;
        let product = self.products.values_mut().find(|p| p.variants.iter().any(|v| v.id == id))?;
        let index = product.variants.iter().position(|v| v.id == id)?;
        Some((product, index))
    }
}

/// Shopify's leaky bucket of query cost points.
struct Bucket {
    maximum: f64,
    restore_rate: f64,
    available: f64,
    at: Instant,
}

impl Bucket {
    fn new((maximum, restore_rate): (f64, f64)) -> Bucket {
        Bucket { maximum, restore_rate, available: maximum, at: Instant::now() }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let restored = self.restore_rate * now.duration_since(self.at).as_secs_f64();
        self.available = (self.available + restored).min(self.maximum);
        self.at = now;
    }

    /// The `extensions.cost` object.
    fn cost(&self, requested: u64, actual: Option<u64>) -> Value {
        json!({
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": self.available.floor() as i64,
                "restoreRate": self.restore_rate,
            },
        })
    }
}

/// A webhook on its way to a subscription's callback URL.
struct Outgoing {
    webhook: SignedWebhook,
    shop: String,
    url: String,
}

/// An HTTP answer: status, extra headers, body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer { status, headers: Vec::new(), body: body.to_string() }
    }

    /// A GraphQL error answer (HTTP 200, as Shopify answers them).
    fn errors(message: &str) -> Answer {
        Answer::json(200, json!({ "errors": [{ "message": message }] }))
    }
}

impl ShopifyFake {
    /// Binds 127.0.0.1:0 and serves until dropped, as the app with this API key and secret.
    pub async fn start(api_key: &str, api_secret: &str) -> std::io::Result<ShopifyFake> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
            ids: Ids { next: FIRST_ID, clock: CLOCK_START },
            throttle: (2000.0, 100.0),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let handler = move |req| handle(Arc::clone(&shared), req);
        let server = tokio::spawn(crate::loopback::serve(listener, Arc::new(handler)));
        Ok(ShopifyFake { base_url, state, server, runtime: Handle::current() })
    }

    /// The fake's root, e.g. `http://127.0.0.1:PORT` (no trailing slash); shop URLs are
    /// `{base_url}/{shop domain}/admin/…`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Adds a shop (`acme.myshopify.com`) with its currency (`EUR`), empty, with a full bucket.
    pub fn add_shop(&self, domain: &str, currency: &str) {
        let mut state = self.lock();
        let (id, bucket) = (state.ids.next(), Bucket::new(state.throttle));
        let shop = Shop {
            id,
            domain: domain.to_owned(),
            currency: currency.to_owned(),
            tokens: Vec::new(),
            expiries: HashMap::new(),
            refresh_tokens: HashMap::new(),
            codes: HashMap::new(),
            products: BTreeMap::new(),
            orders: Vec::new(),
            subscriptions: Vec::new(),
            bucket,
        };
        state.shops.insert(domain.to_owned(), shop);
    }

    /// Makes `token` a valid access token of the shop, without OAuth.
    pub fn set_token(&self, shop: &str, token: &str) {
        self.lock().shop(shop).tokens.push(token.to_owned());
    }

    /// The URL Shopify redirects the merchant's browser to once they approve the app (what
    /// `GET /{shop}/admin/oauth/authorize` answers in its `Location`), with a new code for
    /// `scope`.
    pub fn authorize_redirect(&self, shop: &str, redirect_uri: &str, state: &str, scope: &str) -> String {
        self.lock().authorize(shop, redirect_uri, state, scope)
    }

    /// Seeds `products` products (handles `product-0001`…), each with the option "Size" (S, M,
    /// L), except every `big_every`-th (0: none) with Size × Colour giving at least
    /// `big_variants` variants (12 sizes × 10 colours for 120). Stock is 0..50 with some 0s,
    /// every 5th product sells when out of stock (CONTINUE). Deterministic; sends no webhooks
    /// (it is the shop as it was before the app came). Returns the product GIDs.
    pub fn seed_catalogue(&self, shop: &str, products: usize, big_every: usize, big_variants: usize) -> Vec<String> {
        let mut state = self.lock();
        (1..=products)
            .map(|n| {
                let big = big_every > 0 && n.is_multiple_of(big_every);
                state.insert_product(shop, seeded_product(n, big, big_variants), false)
            })
            .collect()
    }

    /// Adds a product (see [`Product::new`]) and sends `products/create`: its GID.
    pub fn add_product(&self, shop: &str, product: Product) -> String {
        self.apply(|state| state.insert_product(shop, product, true))
    }

    /// Changes a product as the merchant would, bumps its `updatedAt` (and that of the variants
    /// that changed) and sends `products/update`: the product as [`ShopifyFake::product`] shows
    /// it, or None if unknown.
    pub fn update_product(&self, shop: &str, gid: &str, change: impl FnOnce(&mut Product)) -> Option<Value> {
        self.apply(|state| {
            let State { shops, ids, .. } = state;
            let product = shops.get_mut(shop)?.products.get_mut(&gid_number(gid, "Product")?)?;
            let before = product.clone();
            change(product);
            product.id = before.id;
            fix_up(product, ids);
            let now = ids.tick();
            product.updated_at = now;
            for variant in &mut product.variants {
                if before.variants.iter().all(|b| b != variant) {
                    variant.updated_at = now;
                }
            }
            let (json, payload) = (product_json(product, usize::MAX), product_payload(product));
            state.emit(shop, "products/update", &payload);
            Some(json)
        })
    }

    /// Deletes a product and sends `products/delete`; false if unknown.
    pub fn delete_product(&self, shop: &str, gid: &str) -> bool {
        self.apply(|state| {
            let id = gid_number(gid, "Product");
            let removed = id.and_then(|id| state.shops.get_mut(shop)?.products.remove(&id));
            let Some(product) = removed else { return false };
            state.emit(shop, "products/delete", &json!({ "id": product.id }));
            true
        })
    }

    /// Sets an inventory item's available quantity (bumping its variant's `updatedAt`) and
    /// sends `inventory_levels/update`; false if unknown.
    pub fn set_inventory(&self, shop: &str, inventory_item_gid: &str, available: i64) -> bool {
        self.apply(|state| {
            let State { shops, ids, .. } = state;
            let Some(item) = gid_number(inventory_item_gid, "InventoryItem") else { return false };
            let products = shops.get_mut(shop).map(|s| s.products.values_mut());
            let mut variants = products.into_iter().flatten().flat_map(|p| &mut p.variants);
            let Some(variant) = variants.find(|v| v.inventory_item_id == item) else { return false };
            variant.inventory_quantity = available;
            variant.updated_at = ids.tick();
            let payload = json!({
                "inventory_item_id": item,
                "location_id": LOCATION_ID,
                "available": available,
                "updated_at": rfc3339(variant.updated_at),
                "admin_graphql_api_id": format!("gid://shopify/InventoryLevel/{LOCATION_ID}?inventory_item_id={item}"),
            });
            state.emit(shop, "inventory_levels/update", &payload);
            true
        })
    }

    /// Fulfils an order with one shipment and sends `orders/fulfilled`: its payload.
    /// Panics if the order is unknown.
    pub fn fulfil_order(&self, shop: &str, order_gid: &str, company: &str, number: &str) -> Value {
        self.apply(|state| {
            let State { shops, ids, .. } = state;
            let order = shops.get_mut(shop).and_then(|s| s.orders.iter_mut().find(|o| o["id"] == order_gid));
            let order = order.unwrap_or_else(|| panic!("shopify fake: no order {order_gid} in {shop}"));
            let (id, now) = (ids.next(), ids.tick());
            let url = format!("https://tracking.example/{}?number={number}", company.to_lowercase());
            let fulfillment = json!({
                "id": id,
                "status": "success",
                "tracking_company": company,
                "tracking_number": number,
                "tracking_numbers": [number],
                "tracking_url": url,
                "tracking_urls": [url],
            });
            order["displayFulfillmentStatus"] = json!("FULFILLED");
            order["fulfillments"].as_array_mut().into_iter().for_each(|f| f.push(fulfillment.clone()));
            let mut payload = order_payload(order);
            payload["fulfillment_status"] = json!("fulfilled");
            payload["updated_at"] = json!(rfc3339(now));
            payload["fulfillments"] = order["fulfillments"].clone();
            state.emit(shop, "orders/fulfilled", &payload);
            payload
        })
    }

    /// Cancels an order (no restock) and sends `orders/cancelled`: its payload.
    /// Panics if the order is unknown.
    pub fn cancel_order(&self, shop: &str, order_gid: &str) -> Value {
        self.apply(|state| {
            let State { shops, ids, .. } = state;
            let order = shops.get_mut(shop).and_then(|s| s.orders.iter_mut().find(|o| o["id"] == order_gid));
            let order = order.unwrap_or_else(|| panic!("shopify fake: no order {order_gid} in {shop}"));
            order["cancelledAt"] = json!(rfc3339(ids.tick()));
            let mut payload = order_payload(order);
            payload["cancelled_at"] = order["cancelledAt"].clone();
            payload["cancel_reason"] = json!("customer");
            state.emit(shop, "orders/cancelled", &payload);
            payload
        })
    }

    /// The merchant uninstalls the app: its tokens and codes are revoked, `app/uninstalled`
    /// is sent to its subscriptions, which are then dropped.
    pub fn uninstall(&self, shop: &str) {
        self.apply(|state| {
            let s = state.shop(shop);
            s.tokens.clear();
            s.refresh_tokens.clear();
            s.codes.clear();
            let name = capitalised(s.handle());
            let payload = json!({ "id": s.id, "name": name, "domain": s.domain, "myshopify_domain": s.domain });
            state.emit(shop, "app/uninstalled", &payload);
            state.shop(shop).subscriptions.clear();
        });
    }

    /// A product as `Product` answers it, but with all its variants; None if unknown or deleted.
    pub fn product(&self, shop: &str, gid: &str) -> Option<Value> {
        let state = self.lock();
        let product = state.shops.get(shop)?.products.get(&gid_number(gid, "Product")?)?;
        Some(product_json(product, usize::MAX))
    }

    /// Every product of the shop (all variants), in id order.
    pub fn products(&self, shop: &str) -> Vec<Value> {
        let state = self.lock();
        let products = state.shops.get(shop).map(|s| s.products.values());
        products.into_iter().flatten().map(|p| product_json(p, usize::MAX)).collect()
    }

    /// Every order the shop received, in order: `{id, legacyResourceId, name, email, tags,
    /// sourceIdentifier, note, financialStatus, lineItems, shippingAddress, createdAt,
    /// cancelledAt, displayFulfillmentStatus, fulfillments}`.
    pub fn orders(&self, shop: &str) -> Vec<Value> {
        self.lock().shops.get(shop).map(|s| s.orders.clone()).unwrap_or_default()
    }

    /// The shop's webhook subscriptions: `{id, topic, uri, callbackUrl, format}`.
    pub fn subscriptions(&self, shop: &str) -> Vec<Value> {
        self.lock().shops.get(shop).map(|s| s.subscriptions.clone()).unwrap_or_default()
    }

    /// Every GraphQL request received, in order (including refused and injected ones).
    pub fn requests(&self) -> Vec<RecordedGraphql> {
        self.lock().requests.clone()
    }

    /// How many GraphQL requests were answered `THROTTLED`.
    pub fn throttled_count(&self) -> usize {
        self.lock().throttled
    }

    /// How many authorization codes were presented to `POST …/admin/oauth/access_token`
    /// (refused ones included; refreshes are counted apart).
    pub fn token_exchanges(&self) -> usize {
        self.lock().token_exchanges
    }

    /// How many refresh-token grants succeeded.
    pub fn token_refreshes(&self) -> usize {
        self.lock().token_refreshes
    }

    /// Expiring access tokens issued from now on live this long (Shopify: one hour).
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        self.lock().token_lifetime = lifetime;
    }

    /// Every webhook delivery attempt so far, in the order they ended.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// The next `n` GraphQL requests get this status before anything is applied: 429 with
    /// `Retry-After: 1` and Shopify's REST-style rate-limit body, 5xx with an internal error.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.fail_next_with_retry_after(n, status, 1.0);
    }

    /// As [`ShopifyFake::fail_next`], with this `Retry-After` (fractional seconds allowed).
    pub fn fail_next_with_retry_after(&self, n: usize, status: u16, retry_after: f64) {
        self.lock().failures.extend(std::iter::repeat_n((status, retry_after), n));
    }

    /// Sets the bucket size and restore rate (points/s) of one shop, or of all shops (and of
    /// those added later) with None; the bucket starts full.
    pub fn set_throttle(&self, shop: Option<&str>, maximum: f64, restore_rate: f64) {
        let mut state = self.lock();
        if shop.is_none() {
            state.throttle = (maximum, restore_rate);
        }
        let shops = state.shops.iter_mut().filter(|(domain, _)| shop.is_none_or(|s| s == domain.as_str()));
        shops.for_each(|(_, s)| s.bucket = Bucket::new((maximum, restore_rate)));
    }

    /// Signs any payload as Shopify would send it for `topic` (`products/update` or
    /// `PRODUCTS_UPDATE`), without sending it.
    pub fn signed_webhook(&self, shop: &str, topic: &str, payload: &Value) -> SignedWebhook {
        self.lock().sign(shop, topic, payload)
    }

    /// The `customers/data_request` payload (only sent to the app's compliance URL, so never
    /// sent by the fake: sign it with [`ShopifyFake::signed_webhook`]).
    pub fn customers_data_request_payload(&self, shop: &str, customer_id: u64, email: &str, orders: &[u64]) -> Value {
        let mut payload = self.compliance_payload(shop);
        payload["orders_requested"] = json!(orders);
        payload["customer"] = json!({ "id": customer_id, "email": email, "phone": null });
        payload["data_request"] = json!({ "id": self.lock().ids.next() });
        payload
    }

    /// The `customers/redact` payload (see [`ShopifyFake::customers_data_request_payload`]).
    pub fn customers_redact_payload(&self, shop: &str, customer_id: u64, email: &str, orders: &[u64]) -> Value {
        let mut payload = self.compliance_payload(shop);
        payload["customer"] = json!({ "id": customer_id, "email": email, "phone": null });
        payload["orders_to_redact"] = json!(orders);
        payload
    }

    /// The `shop/redact` payload (see [`ShopifyFake::customers_data_request_payload`]).
    pub fn shop_redact_payload(&self, shop: &str) -> Value {
        self.compliance_payload(shop)
    }

    fn compliance_payload(&self, shop: &str) -> Value {
        json!({ "shop_id": self.lock().shops.get(shop).map(|s| s.id), "shop_domain": shop })
    }

    /// Runs `change` on the state, then sends the webhooks it made, once the lock is released.
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

impl Drop for ShopifyFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Shopify's OAuth query HMAC: every parameter but `hmac`, sorted by key, as `key=value`
/// joined by `&` (`%` and `&` escaped in both, `=` in keys), HMAC-SHA256 with the app's
/// secret, lowercase hex.
pub fn oauth_query_hmac(params: &[(String, String)], secret: &str) -> String {
    let escape = |s: &str, key: bool| {
        let s = s.replace('%', "%25").replace('&', "%26");
        if key { s.replace('=', "%3D") } else { s }
    };
    let mut pairs: Vec<(String, String)> =
        params.iter().filter(|(k, _)| k != "hmac").map(|(k, v)| (escape(k, true), escape(v, false))).collect();
    pairs.sort();
    let message: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    hex(&hmac_sha256(secret, message.join("&").as_bytes()))
}

/// A webhook's `X-Shopify-Hmac-Sha256`: base64 of HMAC-SHA256 of the raw body.
pub fn webhook_hmac(secret: &str, body: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(secret, body))
}

async fn handle(state: Arc<Mutex<State>>, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let token = parts.headers.get("x-shopify-access-token").and_then(|v| v.to_str().ok());
    let query = parts.uri.query().unwrap_or("");
    let (answer, outbox) = {
        let mut state = lock(&state);
        let answer = state.serve(parts.method.as_str(), parts.uri.path(), query, token, &body);
        (answer, std::mem::take(&mut state.outbox))
    };
    send(&Handle::current(), &state, outbox);
    let mut response = http::Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", http::HeaderValue::from_static("application/json; charset=utf-8"));
    for (name, value) in answer.headers {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

impl State {
    fn serve(&mut self, method: &str, path: &str, query: &str, token: Option<&str>, body: &[u8]) -> Answer {
        let segments: Vec<&str> = path.split('/').collect();
        let not_found = || Answer::json(404, json!({ "errors": "Not Found" }));
        let ["", shop, "admin", rest @ ..] = segments.as_slice() else { return not_found() };
        if !self.shops.contains_key(*shop) {
            return not_found();
        }
        match (method, rest) {
            ("GET", ["oauth", "authorize"]) => self.authorize_request(shop, query),
            ("POST", ["oauth", "access_token"]) => self.access_token(shop, query, body),
            ("POST", ["api", version, "graphql.json"]) if is_version(version) => self.graphql(shop, token, body),
            _ => not_found(),
        }
    }

    /// The shop, which the test must have added.
    fn shop(&mut self, shop: &str) -> &mut Shop {
        self.shops.get_mut(shop).unwrap_or_else(|| panic!("shopify fake: unknown shop {shop}; add_shop it first"))
    }

    /// The merchant approves the app: a 302 to the redirect URI with a new code.
    fn authorize_request(&mut self, shop: &str, query: &str) -> Answer {
        let params = parse_form(query);
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let refuse = |message: &str| {
            let description = format!("Oauth error invalid_request: {message}");
            Answer::json(400, json!({ "error": "invalid_request", "error_description": description }))
        };
        if param("client_id") != Some(self.api_key.as_str()) {
            return refuse("The client_id is not the app's API key");
        }
        let Some(redirect_uri) = param("redirect_uri").filter(|r| !r.is_empty()) else {
            return refuse("The redirect_uri is missing");
        };
        let location = self.authorize(shop, redirect_uri, param("state").unwrap_or(""), param("scope").unwrap_or(""));
        Answer { status: 302, headers: vec![("location", location)], body: String::new() }
    }

    fn authorize(&mut self, shop: &str, redirect_uri: &str, state: &str, scope: &str) -> String {
        let code = hex(&rand::rng().random::<[u8; 16]>());
        let secret = self.api_secret.clone();
        let s = self.shop(shop);
        s.codes.insert(code.clone(), scope.to_owned());
        let host = STANDARD.encode(format!("admin.shopify.com/store/{}", s.handle()));
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let mut params: Vec<(String, String)> = [("code", code), ("host", host), ("shop", shop.to_owned())]
            .into_iter()
            .chain([("state", state.to_owned()), ("timestamp", timestamp)])
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        params.insert(1, ("hmac".to_owned(), oauth_query_hmac(&params, &secret)));
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        format!("{redirect_uri}{separator}{}", query.join("&"))
    }

    /// Exchanges a code (once) for the shop's offline access token.
    fn access_token(&mut self, shop: &str, query: &str, body: &[u8]) -> Answer {
        let mut params = parse_form(query);
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => {
                params.extend(object.into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_owned()))))
            }
            _ => params.extend(parse_form(&String::from_utf8_lossy(body))),
        }
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if param("grant_type") != Some("refresh_token") {
            self.token_exchanges += 1;
        }
        if param("client_id") != Some(self.api_key.as_str()) || param("client_secret") != Some(self.api_secret.as_str())
        {
            let description = "Client authentication failed: the client_id or client_secret is invalid";
            return Answer::json(400, json!({ "error": "invalid_client", "error_description": description }));
        }
        let lifetime =
            if self.token_lifetime.is_zero() { std::time::Duration::from_secs(3600) } else { self.token_lifetime };
        if param("grant_type") == Some("refresh_token") {
            let used = param("refresh_token").unwrap_or("").to_owned();
            let s = self.shop(shop);
            let Some(scope) = s.refresh_tokens.remove(&used) else {
                let description = "The refresh token is invalid, expired or was already used";
                return Answer::json(400, json!({ "error": "invalid_grant", "error_description": description }));
            };
            let answer = issue_expiring(s, &scope, lifetime);
            self.token_refreshes += 1;
            return answer;
        }
        let expiring = param("expiring") == Some("1");
        let code = param("code").unwrap_or("").to_owned();
        let s = self.shop(shop);
        let Some(scope) = s.codes.remove(&code) else {
            let description = "The authorization code was not found or was already used";
            return Answer::json(400, json!({ "error": "invalid_request", "error_description": description }));
        };
        if expiring {
            return issue_expiring(s, &scope, lifetime);
        }
        let token = format!("shpat_{}", hex(&rand::rng().random::<[u8; 16]>()));
        s.tokens.push(token.clone());
        Answer::json(200, json!({ "access_token": token, "scope": scope }))
    }

    /// One GraphQL request, recorded with its answer.
    fn graphql(&mut self, shop: &str, token: Option<&str>, body: &[u8]) -> Answer {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let operation = request["operationName"].as_str().unwrap_or_default().to_owned();
        let variables = request.get("variables").filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({}));
        let mut throttled = false;
        let answer = self.graphql_answer(shop, token, &request, &operation, &variables, &mut throttled);
        let (shop, status) = (shop.to_owned(), answer.status);
        self.requests.push(RecordedGraphql { shop, operation, variables, status, throttled });
        answer
    }

    fn graphql_answer(
        &mut self,
        shop: &str,
        token: Option<&str>,
        request: &Value,
        operation: &str,
        vars: &Value,
        throttled: &mut bool,
    ) -> Answer {
        if let Some((status, retry_after)) = self.failures.pop_front() {
            return injected(status, retry_after);
        }
        let State { shops, ids, throttled: throttled_count, .. } = self;
        let Some(s) = shops.get_mut(shop) else { return Answer::json(404, json!({ "errors": "Not Found" })) };
        let live = |t: &str| s.expiries.get(t).is_none_or(|until| *until > std::time::Instant::now());
        if !token.is_some_and(|t| s.tokens.iter().any(|known| known == t) && live(t)) {
            return Answer::json(401, json!({ "errors": INVALID_TOKEN }));
        }
        if !request["query"].is_string() {
            return Answer::json(400, json!({ "errors": { "query": "Required parameter missing or invalid" } }));
        }
        let requested = match requested_cost(operation, vars) {
            Ok(Some(cost)) => cost,
            Ok(None) => return Answer::errors("unknown operation"),
            Err(message) => return Answer::errors(&message),
        };
        if requested > MAX_QUERY_COST {
            let error = json!({
                "message": format!("Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."),
                "extensions": { "code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST },
            });
            return Answer::json(200, json!({ "errors": [error] }));
        }
        s.bucket.refill();
        if requested as f64 > s.bucket.available {
            *throttled = true;
            *throttled_count += 1;
            let error = json!({
                "message": "Throttled",
                "extensions": { "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits" },
            });
            let cost = s.bucket.cost(requested, None);
            return Answer::json(200, json!({ "errors": [error], "extensions": { "cost": cost } }));
        }
        let (data, actual) = match execute(s, ids, operation, vars) {
            Ok((data, actual)) => (data, actual.unwrap_or(requested)),
            Err(message) => return Answer::errors(&message),
        };
        s.bucket.available -= actual as f64;
        Answer::json(200, json!({ "data": data, "extensions": { "cost": s.bucket.cost(requested, Some(actual)) } }))
    }

    /// Adds a product (fresh ids, a new `updatedAt`), sending `products/create` if `notify`.
    fn insert_product(&mut self, shop: &str, mut product: Product, notify: bool) -> String {
        let State { shops, ids, .. } = self;
        let s = shops.get_mut(shop).unwrap_or_else(|| panic!("shopify fake: unknown shop {shop}; add_shop it first"));
        product.id = ids.next();
        fix_up(&mut product, ids);
        product.updated_at = ids.tick();
        product.variants.iter_mut().for_each(|v| v.updated_at = product.updated_at);
        let (gid, payload) = (gid("Product", product.id), product_payload(&product));
        s.products.insert(product.id, product);
        if notify {
            self.emit(shop, "products/create", &payload);
        }
        gid
    }

    /// Queues `payload` for each of the shop's subscriptions to `topic`.
    fn emit(&mut self, shop: &str, topic: &str, payload: &Value) {
        let wanted = topic.replace('/', "_").to_uppercase();
        let subscriptions = self.shops.get(shop).map(|s| s.subscriptions.iter());
        let urls: Vec<String> = subscriptions
            .into_iter()
            .flatten()
            .filter(|s| s["topic"] == wanted.as_str())
            .filter_map(|s| s["callbackUrl"].as_str().map(str::to_owned))
            .collect();
        for url in urls {
            let webhook = self.sign(shop, topic, payload);
            self.outbox.push(Outgoing { webhook, shop: shop.to_owned(), url });
        }
    }

    fn sign(&self, shop: &str, topic: &str, payload: &Value) -> SignedWebhook {
        let topic = match topic.rsplit_once('_') {
            Some((object, action)) if !topic.contains('/') => format!("{object}/{action}").to_lowercase(),
            _ => topic.to_owned(),
        };
        let body = payload.to_string();
        let headers = [
            ("Content-Type", "application/json".to_owned()),
            ("X-Shopify-Topic", topic.clone()),
            ("X-Shopify-Hmac-Sha256", webhook_hmac(&self.api_secret, body.as_bytes())),
            ("X-Shopify-Shop-Domain", shop.to_owned()),
            ("X-Shopify-API-Version", API_VERSION.to_owned()),
            ("X-Shopify-Webhook-Id", uuid()),
            ("X-Shopify-Event-Id", uuid()),
            ("X-Shopify-Triggered-At", rfc3339(self.ids.clock)),
        ];
        let headers = headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        SignedWebhook { topic, headers, body }
    }
}

/// What one product (with its options and their values) and one variant (with its selected
/// options, inventory item, measurement and weight) cost: each object is a point.
const PRODUCT_COST: u64 = 10;
const VARIANT_COST: u64 = 10;
/// Shopify refuses any single query that would cost more.
const MAX_QUERY_COST: u64 = 1000;

/// An expiring offline token with its refresh token (Shopify's answer since December 2025).
fn issue_expiring(s: &mut Shop, scope: &str, lifetime: std::time::Duration) -> Answer {
    let token = format!("shpat_{}", hex(&rand::rng().random::<[u8; 16]>()));
    let refresh = format!("shprt_{}", hex(&rand::rng().random::<[u8; 16]>()));
    s.tokens.push(token.clone());
    s.expiries.insert(token.clone(), std::time::Instant::now() + lifetime);
    s.refresh_tokens.insert(refresh.clone(), scope.to_owned());
    Answer::json(
        200,
        json!({
            "access_token": token, "scope": scope, "expires_in": lifetime.as_secs(),
            "refresh_token": refresh, "refresh_token_expires_in": 7_776_000,
        }),
    )
}

/// Shopify's requested cost of an operation: None if the operation is unknown. Product
/// queries count `variantsFirst` variants per product (100 when not given).
fn requested_cost(operation: &str, vars: &Value) -> Result<Option<u64>, String> {
    let page_size = || first(vars).map(|n| n as u64);
    let variants = variants_first(vars) as u64;
    Ok(Some(match operation {
        "Products" => page_size()? * (PRODUCT_COST + 2 + variants * VARIANT_COST) + 2,
        "ProductVariants" => page_size()? * VARIANT_COST + 2,
        "OrdersByTag" => page_size()? + 2,
        "Product" => PRODUCT_COST + 2 + variants * VARIANT_COST,
        "InventoryItem" => 3,
        "ShopInfo" => 1,
        "WebhookSubscriptionCreate" | "OrderCreate" => 10,
        _ => return Ok(None),
    }))
}

/// Runs a known operation: its `data` and its actual cost when it differs from the requested.
fn execute(s: &mut Shop, ids: &mut Ids, operation: &str, vars: &Value) -> Result<(Value, Option<u64>), String> {
    let product_of = |s: &Shop| Some(s.products.get(&gid_number(vars["id"].as_str()?, "Product")?)?.clone());
    let variants_first = variants_first(vars);
    let data = match operation {
        "Products" => {
            let (nodes, page_info) = page(s.products.values(), |p| p.id, after(vars)?, first(vars)?);
            let actual = 2 + nodes
                .iter()
                .map(|p| PRODUCT_COST + 2 + p.variants.len().min(variants_first) as u64 * VARIANT_COST)
                .sum::<u64>();
            let nodes: Vec<Value> = nodes.into_iter().map(|p| product_json(p, variants_first)).collect();
            let data = json!({ "products": { "nodes": nodes, "pageInfo": page_info } });
            return Ok((data, Some(actual)));
        }
        "ProductVariants" => {
            let (after, first) = (after(vars)?, first(vars)?);
            let product =
                product_of(s).map(|p| json!({ "id": gid("Product", p.id), "variants": variants(&p, after, first) }));
            json!({ "product": product })
        }
        "Product" => json!({ "product": product_of(s).map(|p| product_json(&p, variants_first)) }),
        "InventoryItem" => {
            let item = vars["id"].as_str().and_then(|id| gid_number(id, "InventoryItem"));
            let products = s.products.values();
            let found = products
                .flat_map(|p| p.variants.iter().map(move |v| (p, v)))
                .find(|(_, v)| Some(v.inventory_item_id) == item);
            let item = found.map(|(p, v)| {
                let variant = json!({
                    "id": gid("ProductVariant", v.id),
                    "inventoryQuantity": v.inventory_quantity,
                    "inventoryPolicy": v.inventory_policy,
                    "product": { "id": gid("Product", p.id), "updatedAt": rfc3339(p.updated_at) },
                });
                // `variant` is deprecated since 2026-01 for the `variants` connection; both answered.
                json!({
                    "id": gid("InventoryItem", v.inventory_item_id),
                    "tracked": v.tracked,
                    "variant": variant.clone(),
                    "variants": { "nodes": [variant] },
                })
            });
            json!({ "inventoryItem": item })
        }
        "ShopInfo" => {
            json!({ "shop": { "name": capitalised(s.handle()), "myshopifyDomain": s.domain, "currencyCode": s.currency } })
        }
        "WebhookSubscriptionCreate" => json!({ "webhookSubscriptionCreate": subscribe(s, ids, vars)? }),
        "OrderCreate" => json!({ "orderCreate": order_create(s, ids, vars) }),
        "OrdersByTag" => {
            let query = vars["query"].as_str().unwrap_or_default();
            let tag = query.strip_prefix("tag:").unwrap_or(query).trim_matches(|c| c == '\'' || c == '"');
            let tagged = s.orders.iter().filter(|o| o["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == tag)));
            let nodes: Vec<Value> = tagged.take(first(vars)?).map(order_summary).collect();
            json!({ "orders": { "nodes": nodes } })
        }
        _ => return Err("unknown operation".to_owned()),
    };
    Ok((data, None))
}

fn subscribe(s: &mut Shop, ids: &mut Ids, vars: &Value) -> Result<Value, String> {
    let topic = vars["topic"].as_str().filter(|t| TOPICS.contains(t));
    let topic = topic.ok_or_else(|| {
        format!("Variable $topic of type WebhookSubscriptionTopic! was provided invalid value: {}", vars["topic"])
    })?;
    // `uri` since 2025-10; the deprecated `callbackUrl` is still taken.
    let input = &vars["webhookSubscription"];
    let callback_url = input["uri"].as_str().or_else(|| input["callbackUrl"].as_str()).unwrap_or_default();
    if s.subscriptions.iter().any(|x| x["topic"] == topic && x["callbackUrl"] == callback_url) {
        let error = json!({
            "field": ["webhookSubscription", "callbackUrl"],
            "message": "Address for this topic has already been taken",
        });
        return Ok(json!({ "webhookSubscription": null, "userErrors": [error] }));
    }
    let id = gid("WebhookSubscription", ids.next());
    let format = vars["webhookSubscription"]["format"].as_str().unwrap_or("JSON");
    s.subscriptions
        .push(json!({ "id": id, "topic": topic, "uri": callback_url, "callbackUrl": callback_url, "format": format }));
    Ok(json!({ "webhookSubscription": { "id": id, "topic": topic, "uri": callback_url }, "userErrors": [] }))
}

/// `orderCreate`: all or nothing; with `DECREMENT_OBEYING_POLICY`, takes tracked stock and
/// refuses to oversell a `DENY` variant.
fn order_create(s: &mut Shop, ids: &mut Ids, vars: &Value) -> Value {
    let order = &vars["order"];
    let refuse = |message: String| json!({ "order": null, "userErrors": [{ "field": ["order", "lineItems"], "message": message }] });
    let lines = order["lineItems"].as_array().cloned().unwrap_or_default();
    if lines.is_empty() {
        return refuse("Line items must have at least one line item".to_owned());
    }
    let mut wanted: Vec<(String, i64)> = Vec::new();
    for line in &lines {
        let variant = line["variantId"].as_str().unwrap_or_default();
        let quantity = line["quantity"].as_i64().filter(|q| *q > 0);
        let Some(quantity) = quantity else { return refuse("Quantity must be greater than 0".to_owned()) };
        if s.variant_mut(variant).is_none() {
            return refuse(format!("Variant {variant} does not exist"));
        }
        match wanted.iter_mut().find(|(v, _)| v == variant) {
            Some((_, total)) => *total += quantity,
            None => wanted.push((variant.to_owned(), quantity)),
        }
    }
    let decrement = vars["options"]["inventoryBehaviour"] == "DECREMENT_OBEYING_POLICY";
    if decrement {
        for (variant, quantity) in &wanted {
            let (product, i) = s.variant_mut(variant).expect("checked above");
            let v = &product.variants[i];
            if v.tracked && v.inventory_policy == "DENY" && v.inventory_quantity < *quantity {
                return refuse("Unable to reserve inventory".to_owned());
            }
        }
    }
    let now = ids.tick();
    let mut line_items = Vec::new();
    for line in &lines {
        let (product, i) = s.variant_mut(line["variantId"].as_str().unwrap_or_default()).expect("checked above");
        let quantity = line["quantity"].as_i64().unwrap_or_default();
        let v = &mut product.variants[i];
        if decrement && v.tracked {
            v.inventory_quantity -= quantity;
            v.updated_at = now;
        }
        line_items.push(json!({
            "variantId": gid("ProductVariant", v.id),
            "quantity": quantity,
            "sku": v.sku,
            "title": product.title,
            "variantTitle": v.options.join(" / "),
            "price": v.price,
        }));
    }
    let (id, number) = (ids.next(), 1001 + s.orders.len());
    let created = json!({
        "id": gid("Order", id),
        "legacyResourceId": id.to_string(),
        "name": format!("#{number}"),
        "email": order["email"],
        "tags": order["tags"].as_array().cloned().unwrap_or_default(),
        "sourceIdentifier": order["sourceIdentifier"],
        "note": order["note"],
        "financialStatus": order["financialStatus"],
        "lineItems": line_items,
        "shippingAddress": order["shippingAddress"],
        "createdAt": rfc3339(now),
        "cancelledAt": null,
        "displayFulfillmentStatus": "UNFULFILLED",
        "fulfillments": [],
    });
    let summary = order_summary(&created);
    s.orders.push(created);
    json!({ "order": summary, "userErrors": [] })
}

fn order_summary(order: &Value) -> Value {
    json!({ "id": order["id"], "legacyResourceId": order["legacyResourceId"], "name": order["name"], "tags": order["tags"] })
}

/// The common fields of the `orders/*` webhooks.
fn order_payload(order: &Value) -> Value {
    let id: u64 = order["legacyResourceId"].as_str().and_then(|n| n.parse().ok()).unwrap_or_default();
    let tags: Vec<&str> = order["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    json!({ "id": id, "admin_graphql_api_id": order["id"], "name": order["name"], "tags": tags.join(", ") })
}

/// A product as the GraphQL `Product` object, with its first `variants_first` variants.
fn product_json(p: &Product, variants_first: usize) -> Value {
    let options: Vec<Value> = p
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let values: Vec<Value> =
                o.values.iter().map(|v| json!({ "id": gid("ProductOptionValue", v.id), "name": v.name })).collect();
            json!({ "id": gid("ProductOption", o.id), "name": o.name, "position": i + 1, "optionValues": values })
        })
        .collect();
    json!({
        "id": gid("Product", p.id),
        "legacyResourceId": p.id.to_string(),
        "title": p.title,
        "handle": p.handle,
        "descriptionHtml": p.description_html,
        "status": p.status,
        "tags": p.tags,
        "updatedAt": rfc3339(p.updated_at),
        "options": options,
        "variants": variants(p, 0, variants_first),
    })
}

/// A page of a product's variants: `{nodes, pageInfo}`.
fn variants(p: &Product, after: u64, first: usize) -> Value {
    let (nodes, page_info) = page(&p.variants, |v| v.id, after, first);
    let nodes: Vec<Value> = nodes.into_iter().map(|v| variant_json(p, v)).collect();
    json!({ "nodes": nodes, "pageInfo": page_info })
}

fn variant_json(p: &Product, v: &Variant) -> Value {
    let selected: Vec<Value> = p
        .options
        .iter()
        .zip(&v.options)
        .map(|(o, value)| {
            let id = o.values.iter().find(|x| x.name == *value).map(|x| gid("ProductOptionValue", x.id));
            json!({ "name": o.name, "value": value, "optionValue": { "id": id } })
        })
        .collect();
    json!({
        "id": gid("ProductVariant", v.id),
        "title": v.options.join(" / "),
        "sku": v.sku,
        "barcode": v.barcode,
        "price": v.price,
        "compareAtPrice": v.compare_at_price,
        "inventoryPolicy": v.inventory_policy,
        "inventoryQuantity": v.inventory_quantity,
        "updatedAt": rfc3339(v.updated_at),
        "selectedOptions": selected,
        "inventoryItem": {
            "id": gid("InventoryItem", v.inventory_item_id),
            "tracked": v.tracked,
            "measurement": { "weight": { "unit": "GRAMS", "value": v.weight_grams } },
        },
    })
}

/// The REST product of the `products/create` and `products/update` webhooks.
fn product_payload(p: &Product) -> Value {
    let variants: Vec<Value> = p
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut variant = json!({
                "id": v.id,
                "admin_graphql_api_id": gid("ProductVariant", v.id),
                "product_id": p.id,
                "title": v.options.join(" / "),
                "position": i + 1,
                "sku": v.sku,
                "barcode": v.barcode,
                "price": v.price,
                "compare_at_price": v.compare_at_price,
                "inventory_policy": v.inventory_policy.to_lowercase(),
                "inventory_item_id": v.inventory_item_id,
                "inventory_quantity": v.inventory_quantity,
                "updated_at": rfc3339(v.updated_at),
            });
            for (n, value) in v.options.iter().enumerate().take(3) {
                variant[format!("option{}", n + 1)] = json!(value);
            }
            variant
        })
        .collect();
    let options: Vec<Value> = p
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let values: Vec<&str> = o.values.iter().map(|v| v.name.as_str()).collect();
            json!({ "id": o.id, "product_id": p.id, "name": o.name, "position": i + 1, "values": values })
        })
        .collect();
    json!({
        "id": p.id,
        "admin_graphql_api_id": gid("Product", p.id),
        "title": p.title,
        "handle": p.handle,
        "body_html": p.description_html,
        "status": p.status.to_lowercase(),
        "updated_at": rfc3339(p.updated_at),
        "tags": p.tags.join(", "),
        "variants": variants,
        "options": options,
    })
}

/// Gives fresh ids to whatever has none and adds the values variants select to their options.
fn fix_up(p: &mut Product, ids: &mut Ids) {
    for variant in &p.variants {
        for (option, value) in p.options.iter_mut().zip(&variant.options) {
            if option.values.iter().all(|v| v.name != *value) {
                option.values.push(OptionValue { id: 0, name: value.clone() });
            }
        }
    }
    for option in &mut p.options {
        let values = option.values.iter_mut().map(|v| &mut v.id);
        for id in std::iter::once(&mut option.id).chain(values) {
            if *id == 0 {
                *id = ids.next();
            }
        }
    }
    for variant in &mut p.variants {
        for id in [&mut variant.id, &mut variant.inventory_item_id] {
            if *id == 0 {
                *id = ids.next();
            }
        }
    }
}

/// Catalogue product `n` (see [`ShopifyFake::seed_catalogue`]).
fn seeded_product(n: usize, big: bool, big_variants: usize) -> Product {
    const ADJECTIVES: [&str; 8] =
        ["Cosy", "Classic", "Organic", "Handmade", "Vintage", "Everyday", "Deluxe", "Minimal"];
    const NOUNS: [&str; 9] =
        ["Wool Scarf", "Coffee Mug", "Tote Bag", "Candle", "Notebook", "Tea Set", "Beanie", "Water Bottle", "Apron"];
    const SIZES: [&str; 12] = ["XXS", "XS", "S", "M", "L", "XL", "XXL", "3XL", "4XL", "5XL", "6XL", "7XL"];
    const COLOURS: [&str; 10] = ["Red", "Blue", "Green", "Black", "White", "Grey", "Navy", "Pink", "Yellow", "Orange"];
    const CATEGORIES: [&str; 4] = ["apparel", "home", "kitchen", "stationery"];
    let title = format!("{} {} {n:04}", ADJECTIVES[n % ADJECTIVES.len()], NOUNS[n % NOUNS.len()]);
    let named = |names: &[&str], count: usize, prefix: &str| -> Vec<String> {
        (0..count).map(|i| names.get(i).map_or_else(|| format!("{prefix} {}", i + 1), |s| s.to_string())).collect()
    };
    let options = if big {
        let sizes = big_variants.clamp(1, SIZES.len());
        vec![
            ("Size", named(&SIZES, sizes, "Size")),
            ("Colour", named(&COLOURS, big_variants.div_ceil(sizes), "Colour")),
        ]
    } else {
        vec![("Size", named(&["S", "M", "L"], 3, "Size"))]
    };
    let options: Vec<(&str, Vec<&str>)> =
        options.iter().map(|(name, values)| (*name, values.iter().map(String::as_str).collect())).collect();
    let options: Vec<(&str, &[&str])> = options.iter().map(|(name, values)| (*name, values.as_slice())).collect();
    let mut product = Product::new(&title, &options);
    product.handle = format!("product-{n:04}");
    product.description_html = format!("<p>{title}: a thoughtful gift.</p>");
    product.tags = vec!["gift".to_owned(), CATEGORIES[n % CATEGORIES.len()].to_owned()];
    for (i, variant) in product.variants.iter_mut().enumerate() {
        // A fixed mix of (product, variant), so the catalogue is the same on every run.
        let h = ((n as u64) << 32 ^ i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let h = h ^ (h >> 29);
        let cents = 500 + (h % 190) * 50;
        variant.sku = Some(format!("SKU-{n:04}-{}", i + 1));
        variant.barcode = i.is_multiple_of(2).then(|| format!("40{n:06}{i:05}"));
        variant.price = format!("{}.{:02}", cents / 100, cents % 100);
        variant.compare_at_price = n.is_multiple_of(6).then(|| format!("{}.{:02}", (cents + 500) / 100, cents % 100));
        variant.inventory_quantity = if h.is_multiple_of(7) { 0 } else { (h % 51) as i64 };
        variant.inventory_policy = if n.is_multiple_of(5) { "CONTINUE" } else { "DENY" }.to_owned();
        variant.weight_grams = 100.0 + (h % 900) as f64;
    }
    product
}

/// The first `first` items after the one with id `after` (0: from the start), in id order,
/// with their `pageInfo` (cursors are base64 of the id).
fn page<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    id: impl Fn(&T) -> u64,
    after: u64,
    first: usize,
) -> (Vec<&'a T>, Value) {
    let mut rest = items.into_iter().filter(|item| id(item) > after);
    let nodes: Vec<&T> = rest.by_ref().take(first).collect();
    let end_cursor = nodes.last().map(|item| STANDARD.encode(id(item).to_string()));
    let page_info = json!({ "hasNextPage": rest.next().is_some(), "endCursor": end_cursor });
    (nodes, page_info)
}

/// The `first` variable.
fn first(vars: &Value) -> Result<usize, String> {
    let first = vars["first"].as_u64().filter(|n| *n <= 250);
    first
        .map(|n| n as usize)
        .ok_or_else(|| format!("Variable $first of type Int! was provided invalid value: {}", vars["first"]))
}

/// The `variantsFirst` variable of the product queries.
fn variants_first(vars: &Value) -> usize {
    vars["variantsFirst"].as_u64().map_or(VARIANTS_FIRST, |n| n.min(250) as usize)
}

/// The id an `after` cursor points at (0 when null).
fn after(vars: &Value) -> Result<u64, String> {
    let Some(cursor) = vars["after"].as_str() else { return Ok(0) };
    let id = STANDARD.decode(cursor).ok().and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse().ok());
    id.ok_or_else(|| format!("Invalid cursor for current pagination sort: {cursor}"))
}

/// The answer of an injected failure.
fn injected(status: u16, retry_after: f64) -> Answer {
    match status {
        429 => Answer {
            status,
            headers: vec![("retry-after", retry_after.to_string())],
            body: json!({ "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service." }).to_string(),
        },
        _ => Answer::json(status, json!({ "errors": "Internal Server Error" })),
    }
}

/// Sends each webhook on a task of its own, as Shopify does.
fn send(runtime: &Handle, state: &Arc<Mutex<State>>, outbox: Vec<Outgoing>) {
    for outgoing in outbox {
        runtime.spawn(deliver(Arc::clone(state), outgoing));
    }
}

/// Delivers one webhook: retried after 1, 2 and 4 s while the endpoint cannot be reached or
/// does not answer 2xx. Every attempt is recorded.
async fn deliver(state: Arc<Mutex<State>>, outgoing: Outgoing) {
    let Outgoing { webhook, shop, url } = outgoing;
    let headers: Vec<(&str, &str)> = std::iter::once(("User-Agent", WEBHOOK_USER_AGENT))
        .chain(webhook.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let webhook_id = webhook.header("X-Shopify-Webhook-Id").unwrap_or_default().to_owned();
    let topic = webhook.topic.clone();
    let waits = std::iter::once(Duration::ZERO).chain(WEBHOOK_RETRY_WAITS);
    for (attempt, wait) in waits.enumerate() {
        tokio::time::sleep(wait).await;
        let answer = super::post(&url, &headers, &webhook.body).await;
        let delivered = matches!(answer, Ok(200..=299));
        let (status, error) = match answer {
            Ok(status) => (Some(status), None),
            Err(error) => (None, Some(error)),
        };
        if delivered {
            tracing::info!(%webhook_id, %topic, %shop, %url, ?status, "shopify fake: webhook delivered");
        } else {
            tracing::warn!(%webhook_id, %topic, %shop, %url, ?status, ?error, attempt, "shopify fake: webhook failed");
        }
        let (webhook_id, topic, shop, url) = (webhook_id.clone(), topic.clone(), shop.clone(), url.clone());
        lock(&state).deliveries.push(Delivery { webhook_id, topic, shop, url, status, error });
        if delivered {
            return;
        }
    }
}

fn hmac_sha256(secret: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random version-4 UUID, as Shopify's webhook and event ids.
fn uuid() -> String {
    let h = hex(&rand::rng().random::<[u8; 16]>());
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..])
}

fn gid(kind: &str, id: u64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

/// The number of a GID of this kind.
fn gid_number(gid: &str, kind: &str) -> Option<u64> {
    gid.strip_prefix("gid://shopify/")?.strip_prefix(kind)?.strip_prefix('/')?.parse().ok()
}

fn rfc3339(unix: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// `2026-10`-like (or `unstable`).
fn is_version(version: &str) -> bool {
    let bytes = version.as_bytes();
    version == "unstable"
        || (bytes.len() == 7 && bytes[4] == b'-' && bytes.iter().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit()))
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Percent-encodes all but the unreserved characters.
fn encode(s: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    s.bytes().map(|b| if keep(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space; an invalid escape stays).
fn parse_form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let (bytes, mut out, mut i) = (s.as_bytes(), Vec::new(), 0);
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            let (byte, width) = match (bytes[i], hex) {
                (b'%', Some(byte)) => (byte, 3),
                (b'+', _) => (b' ', 1),
                (byte, _) => (byte, 1),
            };
            out.push(byte);
            i += width;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let pairs = body.split('&').filter(|pair| !pair.is_empty());
    pairs.map(|pair| pair.split_once('=').unwrap_or((pair, ""))).map(|(k, v)| (decode(k), decode(v))).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{Product, ShopifyFake, oauth_query_hmac, parse_form, webhook_hmac};

    const KEY: &str = "app-key-0123";
    const SECRET: &str = "shpss_app_secret";
    const SHOP: &str = "acme.myshopify.com";
    const TOKEN: &str = "shpat_test";

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
    async fn call(fake: &ShopifyFake, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let address = fake.base_url().trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        let headers: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
        Answer { status, headers: head.to_owned(), body: body.to_owned() }
    }

    /// A GraphQL operation of `SHOP` with `token`.
    async fn graphql(fake: &ShopifyFake, token: &str, operation: &str, variables: Value) -> Answer {
        let body = json!({ "query": format!("query {operation} {{ … }}"), "variables": variables, "operationName": operation });
        let headers = [("Content-Type", "application/json"), ("X-Shopify-Access-Token", token)];
        call(fake, "POST", &format!("/{SHOP}/admin/api/2026-10/graphql.json"), &headers, &body.to_string()).await
    }

    async fn started() -> ShopifyFake {
        let fake = ShopifyFake::start(KEY, SECRET).await.expect("start");
        fake.add_shop(SHOP, "EUR");
        fake.set_token(SHOP, TOKEN);
        fake
    }

    #[test]
    fn fakes_shopify_oauth_hmac_matches_shopifys_example() {
        let params = parse_form(
            "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&state=0.6784241404160823\
             &timestamp=1337178173&hmac=ignored",
        );
        assert_eq!(
            oauth_query_hmac(&params, "hush"),
            "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
        );
        // Sorted by key whatever the order; `&`, `%` and a key's `=` escaped.
        let mut reversed = params.clone();
        reversed.reverse();
        assert_eq!(oauth_query_hmac(&reversed, "hush"), oauth_query_hmac(&params, "hush"));
        let pair = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(
            oauth_query_hmac(&pair("a=b", "c&d%"), "k"),
            "2074806a20cb3f668f1aaf9b7ad366b63f6f4af10d78af37e46f659f15a45335"
        );
        assert_eq!(webhook_hmac("hush", b"{}"), "UFwgrGBPZilFtmKh8TqcovA78LGYb1BdWu9I4Q2oyRg=");
    }

    #[tokio::test]
    async fn fakes_shopify_oauth_code_is_single_use() {
        let fake = started().await;
        let path = format!(
            "/{SHOP}/admin/oauth/authorize?client_id={KEY}&scope=read_products%2Cwrite_orders\
             &redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&state=n0nce"
        );
        let approved = call(&fake, "GET", &path, &[], "").await;
        assert_eq!(approved.status, 302, "{}", approved.body);
        let location = header(&approved.headers, "location").expect("a location");
        let (target, query) = location.split_once('?').expect("a query");
        assert_eq!(target, "https://app.example/callback");
        let params = parse_form(query);
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!(param("hmac"), oauth_query_hmac(&params, SECRET));
        assert_eq!((param("shop"), param("state")), (SHOP.to_owned(), "n0nce".to_owned()));
        assert_eq!(param("host"), base64_of("admin.shopify.com/store/acme"));
        let wrong_app = call(&fake, "GET", &path.replace(KEY, "other"), &[], "").await;
        assert_eq!(wrong_app.status, 400);

        let exchange = async |body: String| {
            let headers = [("Content-Type", "application/json")];
            call(&fake, "POST", &format!("/{SHOP}/admin/oauth/access_token"), &headers, &body).await
        };
        let body =
            |secret: &str| json!({ "client_id": KEY, "client_secret": secret, "code": param("code") }).to_string();
        let wrong = exchange(body("nope")).await;
        assert_eq!((wrong.status, wrong.json()["error"].clone()), (400, json!("invalid_client")));
        let granted = exchange(body(SECRET)).await;
        assert_eq!(granted.status, 200, "{}", granted.body);
        let token = granted.json()["access_token"].as_str().expect("a token").to_owned();
        assert!(token.starts_with("shpat_") && token.len() == 38, "{token}");
        assert_eq!(granted.json()["scope"], "read_products,write_orders");
        let reused = exchange(body(SECRET)).await;
        assert_eq!(reused.status, 400);
        assert_eq!(
            reused.json(),
            json!({ "error": "invalid_request", "error_description": "The authorization code was not found or was already used" })
        );
        // Form-encoded works too, with a code issued without HTTP.
        let redirect = fake.authorize_redirect(SHOP, "http://localhost/cb?x=1", "s", "read_products");
        assert!(redirect.starts_with("http://localhost/cb?x=1&code="), "{redirect}");
        let code = parse_form(redirect.split_once('?').unwrap().1).into_iter().find(|(k, _)| k == "code").unwrap().1;
        let form = format!("client_id={KEY}&client_secret={SECRET}&code={code}");
        let headers = [("Content-Type", "application/x-www-form-urlencoded")];
        let granted = call(&fake, "POST", &format!("/{SHOP}/admin/oauth/access_token"), &headers, &form).await;
        assert_eq!(granted.json()["scope"], "read_products");
        assert_eq!(fake.token_exchanges(), 4);

        let shop = graphql(&fake, &token, "ShopInfo", json!({})).await;
        assert_eq!(
            shop.json()["data"]["shop"],
            json!({ "name": "Acme", "myshopifyDomain": SHOP, "currencyCode": "EUR" })
        );
        assert_eq!(shop.json()["extensions"]["cost"]["requestedQueryCost"], 1);
        let denied = graphql(&fake, "shpat_nope", "ShopInfo", json!({})).await;
        assert_eq!(denied.status, 401);
        assert_eq!(denied.json()["errors"], super::INVALID_TOKEN);
        let unknown = graphql(&fake, &token, "Nope", json!({})).await;
        assert_eq!((unknown.status, unknown.json()), (200, json!({ "errors": [{ "message": "unknown operation" }] })));
        let other_shop = call(&fake, "POST", "/other.myshopify.com/admin/api/2026-10/graphql.json", &[], "{}").await;
        assert_eq!(other_shop.status, 404);
        fake.uninstall(SHOP);
        assert_eq!(graphql(&fake, &token, "ShopInfo", json!({})).await.status, 401);
    }

    fn base64_of(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[tokio::test]
    async fn fakes_shopify_products_pages_through_the_catalogue() {
        let fake = started().await;
        let seeded = fake.seed_catalogue(SHOP, 45, 10, 120);
        // A bucket that never runs dry here: this test is about pages and costs.
        fake.set_throttle(Some(SHOP), 10_000.0, 10_000.0);
        let (mut seen, mut after, mut pages) = (Vec::new(), Value::Null, 0);
        loop {
            let answer = graphql(&fake, TOKEN, "Products", json!({ "first": 10, "after": after, "variantsFirst": 5 }))
                .await
                .json();
            let products = &answer["data"]["products"];
            let nodes = products["nodes"].as_array().expect("nodes");
            let variants: usize = nodes.iter().map(|p| p["variants"]["nodes"].as_array().unwrap().len()).sum();
            let cost = &answer["extensions"]["cost"];
            assert_eq!(cost["requestedQueryCost"], 10 * (10 + 2 + 5 * 10) + 2);
            assert_eq!(cost["actualQueryCost"], json!(2 + nodes.len() * 12 + variants * 10));
            seen.extend(nodes.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
            pages += 1;
            if products["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = products["pageInfo"]["endCursor"].clone();
        }
        assert_eq!((seen, pages), (seeded.clone(), 5));
        // The client's own `variantsFirst` sets the variants per product, and the cost.
        let few = graphql(&fake, TOKEN, "Products", json!({ "first": 2, "variantsFirst": 2 })).await.json();
        assert_eq!(few["extensions"]["cost"]["requestedQueryCost"], 2 * (12 + 2 * 10) + 2);
        assert_eq!(few["extensions"]["cost"]["actualQueryCost"], 2 + 2 * (12 + 2 * 10));
        // Past Shopify's single-query maximum: refused whole, nothing charged.
        let huge = graphql(&fake, TOKEN, "Products", json!({ "first": 10 })).await.json();
        assert_eq!(huge["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED");
        let variants = &few["data"]["products"]["nodes"][0]["variants"];
        assert_eq!(
            (variants["nodes"].as_array().unwrap().len(), &variants["pageInfo"]["hasNextPage"]),
            (2, &json!(true))
        );

        let small = fake.product(SHOP, &seeded[0]).expect("a product");
        assert_eq!((small["handle"].as_str(), small["status"].as_str()), (Some("product-0001"), Some("ACTIVE")));
        let variant = &small["variants"]["nodes"][1];
        assert_eq!((variant["title"].as_str(), variant["sku"].as_str()), (Some("M"), Some("SKU-0001-2")));
        assert_eq!(variant["selectedOptions"][0]["optionValue"]["id"], small["options"][0]["optionValues"][1]["id"]);
        assert_eq!(variant["inventoryItem"]["measurement"]["weight"]["unit"], "GRAMS");

        let big = graphql(&fake, TOKEN, "Product", json!({ "id": seeded[9], "variantsFirst": 70 })).await.json();
        let big = &big["data"]["product"];
        assert_eq!(big["variants"]["nodes"].as_array().unwrap().len(), 70);
        assert_eq!(big["variants"]["nodes"][11]["title"], "XS / Blue");
        assert_eq!(big["variants"]["pageInfo"]["hasNextPage"], true);
        let rest = json!({ "id": seeded[9], "first": 50, "after": big["variants"]["pageInfo"]["endCursor"] });
        let rest = graphql(&fake, TOKEN, "ProductVariants", rest).await.json();
        let rest = &rest["data"]["product"]["variants"];
        assert_eq!((rest["nodes"].as_array().unwrap().len(), &rest["pageInfo"]["hasNextPage"]), (50, &json!(false)));
        let gone = json!({ "id": "gid://shopify/Product/1" });
        assert_eq!(graphql(&fake, TOKEN, "Product", gone).await.json()["data"]["product"], Value::Null);

        // The merchant edits: updatedAt moves strictly forward, for the product and the changed variant.
        let before = fake.product(SHOP, &seeded[0]).unwrap();
        let after = fake.update_product(SHOP, &seeded[0], |p| p.variants[0].price = "99.00".to_owned()).unwrap();
        assert!(after["updatedAt"].as_str() > before["updatedAt"].as_str());
        assert_eq!(after["variants"]["nodes"][0]["price"], "99.00");
        assert_ne!(after["variants"]["nodes"][0]["updatedAt"], before["variants"]["nodes"][0]["updatedAt"]);
        assert_eq!(after["variants"]["nodes"][1]["updatedAt"], before["variants"]["nodes"][1]["updatedAt"]);
        let item = after["variants"]["nodes"][0]["inventoryItem"]["id"].as_str().unwrap().to_owned();
        assert!(fake.set_inventory(SHOP, &item, 7));
        let level = graphql(&fake, TOKEN, "InventoryItem", json!({ "id": item })).await.json();
        assert_eq!(level["data"]["inventoryItem"]["variant"]["inventoryQuantity"], 7);
        assert!(fake.delete_product(SHOP, &seeded[0]));
        assert_eq!(fake.products(SHOP).len(), 44);
    }

    #[tokio::test]
    async fn fakes_shopify_throttles_and_injects_failures() {
        let fake = started().await;
        fake.seed_catalogue(SHOP, 3, 0, 0);
        fake.set_throttle(Some(SHOP), 600.0, 1.0);
        let fits = graphql(&fake, TOKEN, "Products", json!({ "first": 5, "variantsFirst": 3 })).await.json();
        let status = &fits["extensions"]["cost"]["throttleStatus"];
        assert_eq!((status["maximumAvailable"].as_f64(), status["restoreRate"].as_f64()), (Some(600.0), Some(1.0)));
        assert_eq!(status["currentlyAvailable"], 600 - (2 + 3 * (12 + 3 * 10)));
        let throttled = graphql(&fake, TOKEN, "Products", json!({ "first": 10, "variantsFirst": 5 })).await;
        assert_eq!(throttled.status, 200);
        let body = throttled.json();
        assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
        assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 622);
        assert_eq!(body["extensions"]["cost"]["actualQueryCost"], Value::Null);
        assert!(body.get("data").is_none());
        assert_eq!(fake.throttled_count(), 1);

        fake.fail_next_with_retry_after(1, 429, 0.2);
        let limited = graphql(&fake, TOKEN, "ShopInfo", json!({})).await;
        assert_eq!(limited.status, 429);
        assert_eq!(header(&limited.headers, "retry-after").as_deref(), Some("0.2"));
        assert!(limited.json()["errors"].as_str().unwrap().starts_with("Exceeded 2 calls per second"));
        fake.fail_next(1, 503);
        let failed = graphql(&fake, TOKEN, "ShopInfo", json!({})).await;
        assert_eq!((failed.status, failed.json()["errors"].clone()), (503, json!("Internal Server Error")));
        assert_eq!(graphql(&fake, TOKEN, "ShopInfo", json!({})).await.status, 200);
        let requests = fake.requests();
        let summary: Vec<_> = requests.iter().map(|r| (r.operation.as_str(), r.status, r.throttled)).collect();
        assert_eq!(
            summary,
            [
                ("Products", 200, false),
                ("Products", 200, true),
                ("ShopInfo", 429, false),
                ("ShopInfo", 503, false),
                ("ShopInfo", 200, false)
            ]
        );
        assert_eq!(requests[1].variables, json!({ "first": 10, "variantsFirst": 5 }));
    }

    #[tokio::test]
    async fn fakes_shopify_order_create_takes_stock_and_refuses_overselling() {
        let fake = started().await;
        let mut product = Product::new("Gift Box", &[("Size", &["Small", "Large"])]);
        product.variants[0].inventory_quantity = 2;
        product.variants[1].inventory_quantity = 0;
        product.variants[1].inventory_policy = "CONTINUE".to_owned();
        let id = fake.add_product(SHOP, product);
        let variants = fake.product(SHOP, &id).unwrap()["variants"]["nodes"].clone();
        let (small, large) = (variants[0]["id"].clone(), variants[1]["id"].clone());
        let order = |lines: Value, behaviour: &str, tag: &str| {
            json!({
                "order": { "lineItems": lines, "email": "a@example.com", "tags": ["bestow", tag], "sourceIdentifier": tag },
                "options": { "inventoryBehaviour": behaviour },
            })
        };
        let decrement = "DECREMENT_OBEYING_POLICY";
        let stock = |fake: &ShopifyFake| {
            let nodes = fake.product(SHOP, &id).unwrap()["variants"]["nodes"].clone();
            (nodes[0]["inventoryQuantity"].as_i64().unwrap(), nodes[1]["inventoryQuantity"].as_i64().unwrap())
        };

        let lines = json!([{ "variantId": small, "quantity": 1 }, { "variantId": large, "quantity": 3 }]);
        let placed = graphql(&fake, TOKEN, "OrderCreate", order(lines, decrement, "g-1")).await.json();
        let created = &placed["data"]["orderCreate"];
        assert_eq!(created["userErrors"], json!([]));
        assert_eq!(
            (created["order"]["name"].as_str(), &created["order"]["tags"]),
            (Some("#1001"), &json!(["bestow", "g-1"]))
        );
        assert_eq!(stock(&fake), (1, -3));

        let lines = json!([{ "variantId": small, "quantity": 1 }, { "variantId": small, "quantity": 1 }]);
        let refused = graphql(&fake, TOKEN, "OrderCreate", order(lines.clone(), decrement, "g-2")).await.json();
        let refused = &refused["data"]["orderCreate"];
        assert_eq!(refused["order"], Value::Null);
        assert_eq!(
            refused["userErrors"],
            json!([{ "field": ["order", "lineItems"], "message": "Unable to reserve inventory" }])
        );
        assert_eq!(stock(&fake), (1, -3));
        let bypass = graphql(&fake, TOKEN, "OrderCreate", order(lines, "BYPASS", "g-3")).await.json();
        assert_eq!(bypass["data"]["orderCreate"]["order"]["name"], "#1002");
        assert_eq!(stock(&fake), (1, -3));
        let unknown = json!([{ "variantId": "gid://shopify/ProductVariant/1", "quantity": 1 }]);
        let unknown = graphql(&fake, TOKEN, "OrderCreate", order(unknown, decrement, "g-4")).await.json();
        assert_eq!(unknown["data"]["orderCreate"]["userErrors"][0]["field"], json!(["order", "lineItems"]));
        assert_eq!(fake.orders(SHOP).len(), 2);

        let tagged = graphql(&fake, TOKEN, "OrdersByTag", json!({ "first": 10, "query": "tag:'g-3'" })).await.json();
        let nodes = &tagged["data"]["orders"]["nodes"];
        assert_eq!((nodes.as_array().unwrap().len(), &nodes[0]["name"]), (1, &json!("#1002")));
        let all = graphql(&fake, TOKEN, "OrdersByTag", json!({ "first": 10, "query": "tag:'bestow'" })).await.json();
        assert_eq!(all["data"]["orders"]["nodes"].as_array().unwrap().len(), 2);
        let order_id = fake.orders(SHOP)[0]["id"].as_str().unwrap().to_owned();
        let fulfilled = fake.fulfil_order(SHOP, &order_id, "UPS", "1Z999");
        assert_eq!(
            (fulfilled["fulfillment_status"].as_str(), fulfilled["tags"].as_str()),
            (Some("fulfilled"), Some("bestow, g-1"))
        );
        assert_eq!(fulfilled["fulfillments"][0]["tracking_numbers"], json!(["1Z999"]));
        assert_eq!(fake.orders(SHOP)[0]["displayFulfillmentStatus"], "FULFILLED");
        assert_eq!(fake.cancel_order(SHOP, &order_id)["cancel_reason"], "customer");
    }

    /// A webhook endpoint on a loopback port: answers one request per status of `statuses`, in
    /// turn, and hands each request over as (head, body).
    async fn endpoint(statuses: Vec<u16>) -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, String)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/webhooks/shopify", listener.local_addr().expect("an address"));
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for status in statuses {
                let (mut stream, _) = listener.accept().await.expect("accept");
                let mut raw = Vec::new();
                let mut chunk = [0; 4096];
                let complete = |raw: &[u8]| {
                    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
                    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                    let length: usize = header(&head, "content-length")?.parse().ok()?;
                    (raw.len() >= end + 4 + length)
                        .then(|| (head, String::from_utf8_lossy(&raw[end + 4..]).into_owned()))
                };
                let request = loop {
                    if let Some(request) = complete(&raw) {
                        break request;
                    }
                    let n = stream.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "the request ended early");
                    raw.extend_from_slice(&chunk[..n]);
                };
                let answer = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                stream.write_all(answer.as_bytes()).await.expect("answer");
                let _ = sender.send(request);
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
    async fn fakes_shopify_delivers_signed_webhooks() {
        let fake = started().await;
        let ids = fake.seed_catalogue(SHOP, 2, 0, 0);
        // The first delivery is refused: Shopify retries it a second later.
        let (url, mut received) = endpoint(vec![503, 200, 200]).await;
        let subscribe =
            |topic: &str| json!({ "topic": topic, "webhookSubscription": { "uri": url, "format": "JSON" } });
        let created = graphql(&fake, TOKEN, "WebhookSubscriptionCreate", subscribe("PRODUCTS_UPDATE")).await.json();
        let created = &created["data"]["webhookSubscriptionCreate"];
        assert_eq!(created["userErrors"], json!([]));
        assert_eq!(created["webhookSubscription"]["uri"], url.as_str());
        let again = graphql(&fake, TOKEN, "WebhookSubscriptionCreate", subscribe("PRODUCTS_UPDATE")).await.json();
        let again = &again["data"]["webhookSubscriptionCreate"];
        assert_eq!(again["webhookSubscription"], Value::Null);
        assert_eq!(again["userErrors"][0]["message"], "Address for this topic has already been taken");
        graphql(&fake, TOKEN, "WebhookSubscriptionCreate", subscribe("PRODUCTS_DELETE")).await;
        assert_eq!(fake.subscriptions(SHOP).len(), 2);

        fake.update_product(SHOP, &ids[0], |p| p.title = "Renamed".to_owned()).expect("a product");
        let mut next = async || {
            let request = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
            request.expect("a delivery in time").expect("the endpoint is up")
        };
        let (refused_head, refused_body) = next().await;
        let (head, body) = next().await;
        assert!(head.starts_with("POST /webhooks/shopify HTTP/1.1\r\n"), "{head}");
        assert_eq!(
            (refused_body.as_str(), header(&refused_head, "x-shopify-webhook-id")),
            (body.as_str(), header(&head, "x-shopify-webhook-id"))
        );
        assert_eq!(header(&head, "x-shopify-topic").as_deref(), Some("products/update"));
        assert_eq!(header(&head, "x-shopify-shop-domain").as_deref(), Some(SHOP));
        assert_eq!(header(&head, "x-shopify-api-version").as_deref(), Some("2026-10"));
        assert_eq!(header(&head, "x-shopify-hmac-sha256"), Some(webhook_hmac(SECRET, body.as_bytes())));
        let payload: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!((payload["title"].as_str(), payload["status"].as_str()), (Some("Renamed"), Some("active")));
        assert_eq!(payload["admin_graphql_api_id"], ids[0].as_str());
        assert_eq!(payload["variants"][0]["sku"], "SKU-0001-1");

        // Not subscribed to inventory_levels/update: nothing sent.
        let item = fake.product(SHOP, &ids[1]).unwrap()["variants"]["nodes"][0]["inventoryItem"]["id"].clone();
        assert!(fake.set_inventory(SHOP, item.as_str().unwrap(), 3));
        assert!(fake.delete_product(SHOP, &ids[1]));
        let (head, body) = next().await;
        assert_eq!(header(&head, "x-shopify-topic").as_deref(), Some("products/delete"));
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({ "id": super::gid_number(&ids[1], "Product") })
        );

        let mut deliveries = fake.deliveries();
        for _ in 0..200 {
            if deliveries.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            deliveries = fake.deliveries();
        }
        let summary: Vec<_> = deliveries.iter().map(|d| (d.topic.as_str(), d.status)).collect();
        assert_eq!(
            summary,
            [("products/update", Some(503)), ("products/update", Some(200)), ("products/delete", Some(200))]
        );

        // Signed without sending; a tampered body no longer matches.
        let signed = fake.signed_webhook(SHOP, "SHOP_REDACT", &fake.shop_redact_payload(SHOP));
        assert_eq!(signed.topic, "shop/redact");
        assert_eq!(signed.header("x-shopify-hmac-sha256"), Some(webhook_hmac(SECRET, signed.body.as_bytes()).as_str()));
        let tampered = signed.body.replace(SHOP, "evil.myshopify.com");
        assert_ne!(signed.header("X-Shopify-Hmac-Sha256"), Some(webhook_hmac(SECRET, tampered.as_bytes()).as_str()));
        assert_eq!(fake.deliveries().len(), 3);
    }
}
