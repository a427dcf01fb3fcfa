//! Every function's sample event from `events/`, made answerable on a seeded local stack: the
//! demo tenant plus what the events name (an order that is paid and split, an image, jobs, a
//! closed statement, a connected Shopify shop), the placeholder ids replaced by the real ones, fresh idempotency keys
//! and job ids per run, current ETags and freshly signed webhooks. The cold-start benchmark
//! hands these to the real binaries; the round-trip test runs them in process with every AWS
//! call counted. Each function has one right answer on this state ([`expected`]).

use std::collections::BTreeMap;

use bestow::App;
use hmac::{Hmac, Mac};
use http::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::InfraError;
use crate::demo;
use crate::devtoken::DevUser;
use crate::fakes::shopify::ShopifyFake;
use crate::fakes::stripe::StripeFake;
use crate::gateway::Gateway;
use crate::seed::call;
use crate::stack::LocalStack;
use crate::template::workspace_root;

/// The platform secrets the stack was given, to sign webhooks as their senders do.
pub struct Signers {
    pub shopify_app_secret: String,
    pub xero_webhook_key: String,
    pub billing_webhook_secret: String,
}

/// Runs per function the prepared state allows (units to refund and ship, one per run).
pub const MAX_RUNS: usize = 10;
/// The fixture order's units: 1 a gift (no address), 2 refunded by the fixture, then a block
/// of MAX_RUNS each for the runs of refund-request, refunds-create and units-fulfil.
const ORDER_UNITS: usize = 2 + 3 * MAX_RUNS;
const REFUND_REQUEST_UNITS: usize = 3;
const REFUNDS_CREATE_UNITS: usize = REFUND_REQUEST_UNITS + MAX_RUNS;
const UNITS_FULFIL_UNITS: usize = REFUNDS_CREATE_UNITS + MAX_RUNS;

/// The demo vendor's Stripe webhook secret (set by the seed).
const DEMO_STRIPE_WEBHOOK_SECRET: &str = "whsec_localdemo000000";

/// The right answer of a function's sample event on the prepared stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// An HTTP function answers this status.
    Status(u16),
    /// A worker reports no message to retry.
    JobsDone,
    /// A worker reports its message for a retry (the state it waits for is absent).
    JobRetried,
    /// A scheduled function returns its summary.
    Summary,
}

/// `(function, answer, why the answer is not the happy path)`, for every function whose
/// right answer on the prepared stack is not a plain success. Everything else answers 2xx
/// (HTTP) or finishes its jobs.
const NOT_HAPPY_PATH: &[(&str, Expect, &str)] = &[
    ("images-confirm", Expect::Status(409), "the image record exists but nothing was uploaded to it"),
    (
        "shopify-callback",
        Expect::Status(401),
        "its hmac is Shopify's, over a state made by an install a browser follows",
    ),
    ("xero-callback", Expect::Status(400), "its state is single-use and made by a connect a browser follows"),
];

/// The right answer of `function`'s sample event on the prepared stack, and why when it is
/// not the happy path.
pub fn expected(function: &str) -> (Expect, Option<&'static str>) {
    if let Some((_, expect, why)) = NOT_HAPPY_PATH.iter().find(|(f, _, _)| *f == function) {
        return (*expect, Some(why));
    }
    if bestow::jobs::registry::ALL.iter().any(|w| w.function == function) {
        return (Expect::JobsDone, None);
    }
    if bestow::jobs::schedule::by_function(function).is_some() {
        return (Expect::Summary, None);
    }
    (Expect::Status(0), None)
}

/// What a function answered, from its binary (`/response` or `/error`) or in process.
#[derive(Debug)]
pub enum Answer {
    Http { status: u16, body: String },
    Batch { failures: usize },
    Summary(Value),
    Error(String),
}

impl Answer {
    /// A binary's answer through the Runtime API, read by the function's kind.
    pub fn from_runtime(function: &str, outcome: Result<Value, Value>) -> Answer {
        let value = match outcome {
            Ok(value) => value,
            Err(error) => return Answer::Error(error.to_string()),
        };
        if bestow::jobs::registry::ALL.iter().any(|w| w.function == function) {
            let failures = value["batchItemFailures"].as_array().map_or(0, Vec::len);
            return Answer::Batch { failures };
        }
        if bestow::jobs::schedule::by_function(function).is_some() {
            return Answer::Summary(value);
        }
        match value["statusCode"].as_u64() {
            Some(status) => Answer::Http {
                status: u16::try_from(status).unwrap_or(0),
                body: value["body"].as_str().unwrap_or_default().to_owned(),
            },
            None => Answer::Error(format!("not an API Gateway response: {value}")),
        }
    }

    /// Whether this is `function`'s right answer; the reason when it is not.
    pub fn check(&self, function: &str) -> Result<(), String> {
        let (expect, _) = expected(function);
        match (expect, self) {
            (Expect::Status(0), Answer::Http { status, .. }) if (200..300).contains(status) => Ok(()),
            (Expect::Status(want), Answer::Http { status, .. }) if *status == want => Ok(()),
            (Expect::JobsDone, Answer::Batch { failures: 0 }) => Ok(()),
            (Expect::JobRetried, Answer::Batch { failures }) if *failures > 0 => Ok(()),
            (Expect::Summary, Answer::Summary(_)) => Ok(()),
            (expect, answer) => Err(format!("{function}: expected {expect:?}, got {answer:?}")),
        }
    }
}

/// The prepared stack's ids that replace the sample events' placeholders.
pub struct Samples {
    app: App,
    product: String,
    variant: String,
    storefront: String,
    /// The paid order whose units the runs refund and ship.
    order: String,
    /// A product of the connected Shopify shop (its GID), which the runs change.
    shop_product: String,
    substitutions: Vec<(String, String)>,
    signers: Signers,
    owner: String,
    admin: String,
}

fn step(what: &str, want: u16) -> impl Fn((u16, http::HeaderMap, Value)) -> Result<Value, InfraError> + '_ {
    move |(status, _, body)| {
        if status == want { Ok(body) } else { Err(InfraError::Other(format!("samples: {what}: {status} {body}"))) }
    }
}

fn id_of(value: &Value, pointer: &str, what: &str) -> Result<String, InfraError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| InfraError::Other(format!("samples: no {what} in {value}")))
}

/// Polls `condition` every 100 ms for up to a minute (jobs run on the stack's pollers).
async fn until<T>(
    what: &str,
    mut condition: impl AsyncFnMut() -> Result<Option<T>, InfraError>,
) -> Result<T, InfraError> {
    for _ in 0..600 {
        if let Some(done) = condition().await? {
            return Ok(done);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(InfraError::Other(format!("samples: {what} did not happen within a minute")))
}

impl Samples {
    /// Seeds the demo tenant and makes what the sample events name. The stack's pollers must
    /// run (an order is split, jobs finish); stop them before counting calls.
    pub async fn prepare(
        stack: &LocalStack,
        gateway: &Gateway,
        stripe: &StripeFake,
        shopify: &ShopifyFake,
        signers: Signers,
        smtp_port: u16,
    ) -> Result<Samples, InfraError> {
        let documents = stack.names.bucket("DocumentsBucket").unwrap_or_default().to_owned();
        crate::seed::seed_demo(gateway, &documents).await?;
        let keys = gateway.keys();
        let admin = keys.issue(&DevUser { sub: demo::PLATFORM_ADMIN, group: "platform_admin", vendor_id: None }, 3600);
        let owner = keys.issue(&DevUser { sub: demo::OWNER, group: "owner", vendor_id: Some(demo::VENDOR_ID) }, 3600);
        let vendor = format!("/vendors/{}", demo::VENDOR_ID);
        let get =
            async |path: &str| call(gateway, &owner, Method::GET, path, None, None).await.and_then(step(path, 200));
        // The demo's mail goes to this run's SMTP sink.
        let smtp_path = format!("{vendor}/smtp");
        let (_, headers, _) = call(gateway, &owner, Method::GET, &smtp_path, None, None).await?;
        let etag = headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or("*").to_owned();
        let smtp = json!({"host": "127.0.0.1", "port": smtp_port, "username": "demo-gifts", "password": "local-demo-smtp-password",
            "from_email": "gifts@demo-gifts.example", "from_name": "Demo Gifts", "security": "none"});
        call(gateway, &owner, Method::PUT, &smtp_path, Some(smtp), Some(&etag)).await.and_then(step("smtp", 200))?;

        // A Shopify shop of three products, connected through the install and its callback as
        // the merchant would, its first full sync finished: the Shopify jobs have work to do.
        shopify.add_shop(SAMPLE_SHOP, "EUR");
        let shop_products = shopify.seed_catalogue(SAMPLE_SHOP, 3, 0, 0);
        let shop_product = shop_products.first().cloned().unwrap_or_default();
        let install = call(
            gateway,
            &owner,
            Method::POST,
            &format!("{vendor}/shopify/install"),
            Some(json!({"shop": SAMPLE_SHOP})),
            None,
        )
        .await
        .and_then(step("shopify install", 200))?;
        let authorize = url_query(&id_of(&install, "/authorize_url", "authorize url")?)?;
        let param = |name: &str| authorize.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
        let redirect = shopify.authorize_redirect(SAMPLE_SHOP, param("redirect_uri"), param("state"), param("scope"));
        let back = reqwest::Url::parse(&redirect).map_err(|e| InfraError::Other(format!("samples: {e}")))?;
        let callback = format!("/shopify/callback?{}", back.query().unwrap_or_default());
        let connected =
            call(gateway, "", Method::GET, &callback, None, None).await.and_then(step("shopify callback", 200))?;
        let first_sync = id_of(&connected, "/sync_job_id", "shopify sync job")?;

        let storefronts = get(&format!("{vendor}/storefronts")).await?;
        let storefront = storefronts["items"]
            .as_array()
            .and_then(|items| items.iter().find(|s| s["slug"] == "demo-berlin"))
            .map(|s| id_of(s, "/id", "storefront"))
            .ok_or_else(|| InfraError::Other("samples: the demo storefront is missing".into()))??;
        let products = get(&format!("{vendor}/products")).await?;
        let product = products["items"]
            .as_array()
            .and_then(|items| items.iter().find(|p| p["title"] == "Organic Cotton Tee"))
            .map(|p| id_of(p, "/id", "product"))
            .ok_or_else(|| InfraError::Other("samples: the demo tee is missing".into()))??;
        let product_path = format!("{vendor}/products/{product}");
        let detail = get(&product_path).await?;
        let option = id_of(&detail, "/options/0/id", "option")?;
        let value = id_of(&detail, "/options/0/values/0/id", "option value")?;
        let variants = get(&format!("{product_path}/variants")).await?;
        let variant = id_of(&variants, "/items/0/id", "variant")?;
        let (product_for_runs, variant_for_runs, storefront_for_runs) =
            (product.clone(), variant.clone(), storefront.clone());

        // A paid order, split into units with gift codes (ORDER_UNITS says which unit is whose).
        let variant_tag = variant_etag(&stack.app, &product, &variant).await?;
        let stock = json!({"stock_quantity": 1000});
        let variant_path = format!("{product_path}/variants/{variant}");
        call(gateway, &owner, Method::PATCH, &variant_path, Some(stock), Some(&variant_tag))
            .await
            .and_then(step("stock", 200))?;
        let recipients: Vec<Value> = (1..=ORDER_UNITS)
            .map(|n| {
                let mut recipient = json!({"name": format!("Recipient {n}"), "email": format!("r{n}@samples.example"),
                    "shipping_method_id": "eu-standard"});
                if n > 1 {
                    recipient["address"] = json!({"line1": format!("Street {n}"), "city": "Berlin", "postal_code": "10119", "country": "DE"});
                }
                recipient
            })
            .collect();
        let order_body = json!({"items": [{"product_id": product, "variant_id": variant, "quantity": 1}],
            "sender_name": "Samples Corp", "buyer_email": "buyer@samples.example", "recipients": recipients});
        let checkout_path = format!("{vendor}/storefronts/{storefront}/orders");
        let checkout = call(gateway, &owner, Method::POST, &checkout_path, Some(order_body), None)
            .await
            .and_then(step("order", 201))?;
        let order = id_of(&checkout, "/order/id", "order")?;
        let intent = id_of(&checkout, "/order/payment_intent_id", "payment intent")?;
        let order_id_for_runs = order.clone();
        let paid = stripe
            .succeed_payment(&intent)
            .ok_or_else(|| InfraError::Other("samples: the Stripe fake has no such PaymentIntent".into()))?
            .to_string();
        deliver_stripe(gateway, &paid).await?;
        let units_path = format!("{vendor}/orders/{order}/units?limit=100");
        let units = until("the order's split", async || {
            let units = get(&units_path).await?;
            Ok(units["items"].as_array().is_some_and(|u| u.len() == ORDER_UNITS).then_some(units))
        })
        .await?;
        let gift = units["items"]
            .as_array()
            .and_then(|items| items.iter().find(|u| u["number"] == 1))
            .ok_or_else(|| InfraError::Other("samples: the order has no unit 1".into()))?;
        let code = id_of(gift, "/code", "gift code")?;
        // Unit 1 refunded, so the refund job has its refund (unit 2 stays for the sample refund).
        let refund = call(
            gateway,
            &owner,
            Method::POST,
            &format!("{vendor}/orders/{order}/refunds"),
            Some(json!({"unit_numbers": [2], "reason": "samples"})),
            None,
        )
        .await
        .and_then(step("refund", 201))?;
        let refund = id_of(&refund, "/refunds/0/id", "refund")?;

        // An image record (never uploaded), a variant-generation job, an import, a bulk
        // update and a packing manifest, each finished by the pollers.
        let image = call(
            gateway,
            &owner,
            Method::POST,
            &format!("{product_path}/images"),
            Some(json!({"content_type": "image/png", "size_bytes": 100})),
            None,
        )
        .await
        .and_then(step("image", 201))?;
        let image = id_of(&image, "/image/id", "image")?;
        let ten: Vec<Value> = (0..10).map(|i| json!({ "value": format!("v{i}") })).collect();
        let generated = call(
            gateway,
            &owner,
            Method::POST,
            &format!("{vendor}/products"),
            Some(json!({"title": "Samples Generated", "options": [{"name": "One", "values": ten}, {"name": "Two", "values": ten}]})),
            None,
        )
        .await
        .and_then(step("generated product", 202))?;
        let generation_job = id_of(&generated, "/variant_generation/job_id", "variant generation job")?;
        let import = raw_call(gateway, &owner, &format!("{vendor}/imports"), "imports-create").await?;
        let import_job = id_of(&import, "/id", "import job")?;
        let bulk = call(
            gateway,
            &owner,
            Method::POST,
            &format!("{vendor}/variants/bulk"),
            sample_body("bulk-updates-create").ok(),
            None,
        )
        .await
        .and_then(step("bulk update", 202))?;
        let bulk_job = id_of(&bulk, "/id", "bulk update job")?;
        let manifest =
            call(gateway, &owner, Method::POST, &format!("{vendor}/manifests"), Some(json!({"status": "ready"})), None)
                .await
                .and_then(step("manifest", 202))?;
        let manifest = id_of(&manifest, "/id", "manifest")?;
        for job in [&generation_job, &import_job, &bulk_job, &manifest, &first_sync] {
            let path = format!("{vendor}/jobs/{job}");
            until("a fixture job", async || {
                let status = get(&path).await?;
                Ok(matches!(status["status"].as_str(), Some("succeeded" | "failed")).then_some(()))
            })
            .await?;
        }

        // This month's statement, closed as the schedule would once the month is over.
        let now = time::OffsetDateTime::now_utc();
        let cycle = format!("{:04}-{:02}", now.year(), u8::from(now.month()));
        let scope = bestow::tenancy::guard::job_scope(demo::VENDOR_ID, "samples")
            .map_err(|e| InfraError::Other(format!("samples: {e:?}")))?;
        bestow::billing::service::close_cycle(&stack.app, &scope, &cycle, now + time::Duration::days(62))
            .await
            .map_err(|e| InfraError::Other(format!("samples: closing {cycle}: {e:?}")))?;

        let substitutions = [
            ("01jdemo0storefront0000000a", storefront),
            ("01jdemo0product0000000000a", product),
            ("01jdemo0variant0000000000a", variant),
            ("01jdemo0option00000000000a", option),
            ("01jdemo0value000000000000a", value),
            ("01jdemo0image000000000000a", image),
            ("01jdemoorder00000000000001", order),
            ("01jdemorefund0000000000001", refund),
            ("pi_3QdemoIntent000001Fk7aBc", intent),
            ("7KQ2-M9XD-4HBT-ZR6W", code),
            ("01jdemo0job000000000000000", generation_job),
            ("01jdemo0job000000000000001", import_job),
            ("01jdemo0job000000000000002", bulk_job),
            ("01jdemomanifest00000000001", manifest),
            ("632910392", shop_product.rsplit('/').next().unwrap_or_default().to_owned()),
            ("\"cycle_id\":\"2026-11\"", format!("\"cycle_id\":\"{cycle}\"")),
            ("\\\"cycle_id\\\":\\\"2026-11\\\"", format!("\\\"cycle_id\\\":\\\"{cycle}\\\"")),
            ("/statements/2026-11", format!("/statements/{cycle}")),
            // The settings samples write the demo's working values back (later samples use them).
            ("pk_test_EXAMPLEONLY0000", "pk_test_localdemo000000".to_owned()),
            ("sk_test_EXAMPLEONLY0000", "sk_test_localdemo000000".to_owned()),
            ("whsec_EXAMPLEONLY0000", DEMO_STRIPE_WEBHOOK_SECRET.to_owned()),
            ("bestow-local-documentsbucket", documents.clone()),
            ("\"cycleId\":\"2026-11\"", format!("\"cycleId\":\"{cycle}\"")),
        ]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), to))
        .collect();
        Ok(Samples {
            app: stack.app.clone(),
            product: product_for_runs,
            variant: variant_for_runs,
            storefront: storefront_for_runs,
            order: order_id_for_runs,
            shop_product,
            substitutions,
            signers,
            owner,
            admin,
        })
    }

    /// `function`'s sample event for its `run`-th invocation on this stack.
    async fn event(
        &self,
        gateway: &Gateway,
        stripe: &StripeFake,
        shopify: &ShopifyFake,
        function: &str,
        run: usize,
    ) -> Result<Value, InfraError> {
        if run >= MAX_RUNS {
            return Err(InfraError::Other(format!("samples: at most {MAX_RUNS} runs per function")));
        }
        let mut text = std::fs::read_to_string(workspace_root().join("events").join(format!("{function}.json")))?;
        // A unit of its own per run for the functions that change a unit for good.
        let unit = format!("{}-{:05}", self.order, UNITS_FULFIL_UNITS + run);
        text = text.replace("01jdemoorder00000000000001-00001", &unit);
        let refunded = REFUNDS_CREATE_UNITS + run;
        text = text.replace("\\\"unit_numbers\\\":[1]", &format!("\\\"unit_numbers\\\":[{refunded}]"));
        for (from, to) in &self.substitutions {
            text = text.replace(from, to);
        }
        // Creates that take a unique name: a new one per run.
        let unique: &[(&str, &str)] = match function {
            "vendors-create" => &[("acme-gifts", "acme-gifts-")],
            "storefronts-create" => &[("demo-berlin", "demo-berlin-")],
            "products-create" => &[("organic-cotton-tee", "organic-cotton-tee-")],
            // A message's key is its job's: a new message per run, not a duplicate delivery.
            "email-dispatch" => &[("smtp-test-sample-0001", "smtp-test-sample-")],
            _ => &[],
        };
        let tag = format!("{run}-{}", &bestow::store::ids::new_id()[18..]);
        for (from, prefix) in unique {
            text = text.replace(from, &format!("{prefix}{tag}"));
        }
        let mut event: Value = serde_json::from_str(&text)?;
        self.restore(gateway, function, &mut event).await?;
        self.new_job(gateway, stripe, shopify, function, run, &mut event).await?;
        if event["headers"]["idempotency-key"].is_string() {
            event["headers"]["idempotency-key"] = Value::String(bestow::store::ids::new_id());
        }
        if event["headers"]["if-match"].is_string() {
            let path = event["rawPath"].as_str().unwrap_or_default().to_owned();
            event["headers"]["if-match"] = Value::String(self.current_etag(gateway, function, &path).await?);
        }
        if let Some(records) = event["Records"].as_array_mut() {
            // A new job each run: the same envelope again would be skipped as done.
            for record in records {
                let mut envelope: Value = serde_json::from_str(record["body"].as_str().unwrap_or("{}"))?;
                envelope["job_id"] = Value::String(bestow::store::ids::new_id());
                envelope["idempotency_key"] = Value::String(format!("samples-{tag}"));
                record["body"] = Value::String(envelope.to_string());
            }
        }
        self.sign(function, &mut event);
        Ok(event)
    }

    /// What a delete removes, made again for its next run.
    async fn restore(&self, gateway: &Gateway, function: &str, event: &mut Value) -> Result<(), InfraError> {
        let path = event["rawPath"].as_str().unwrap_or_default().to_owned();
        match function {
            "images-delete" => {
                let (product, _) = path.rsplit_once("/images/").unwrap_or_default();
                let image = call(
                    gateway,
                    &self.owner,
                    Method::POST,
                    &format!("{product}/images"),
                    Some(json!({"content_type": "image/png", "size_bytes": 100})),
                    None,
                )
                .await
                .and_then(step("image", 201))?;
                let path = format!("{product}/images/{}", id_of(&image, "/image/id", "image")?);
                event["rawPath"] = Value::String(path.clone());
                event["requestContext"]["http"]["path"] = Value::String(path);
                event["pathParameters"]["imageId"] = image["image"]["id"].clone();
            }
            "listings-delete" => {
                // 428: listed already (the first run).
                let listing = json!({"sort_order": 1});
                let (status, _, body) = call(gateway, &self.owner, Method::PUT, &path, Some(listing), None).await?;
                if !matches!(status, 201 | 428) {
                    return Err(InfraError::Other(format!("samples: listing again: {status} {body}")));
                }
            }
            // A listing's ETag comes only from its last write: each run lists the product anew.
            "listings-put" => {
                let (status, _, body) = call(gateway, &self.owner, Method::DELETE, &path, None, None).await?;
                if !matches!(status, 204 | 404) {
                    return Err(InfraError::Other(format!("samples: unlisting: {status} {body}")));
                }
                if let Some(headers) = event["headers"].as_object_mut() {
                    headers.remove("if-match");
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A job whose work is not done yet, made for each run through the route that queues it in
    /// production (the queued message itself is left unprocessed): without it the sample's
    /// job would be a duplicate delivery of one the fixture finished.
    async fn new_job(
        &self,
        gateway: &Gateway,
        stripe: &StripeFake,
        shopify: &ShopifyFake,
        function: &str,
        run: usize,
        event: &mut Value,
    ) -> Result<(), InfraError> {
        let vendor = format!("/vendors/{}", demo::VENDOR_ID);
        let post = async |path: String, body: Value, want: u16| {
            call(gateway, &self.owner, Method::POST, &path, Some(body), None).await.and_then(step(function, want))
        };
        let payload = match function {
            "product-import" => {
                let import = raw_call(gateway, &self.owner, &format!("{vendor}/imports"), "imports-create").await?;
                json!({"job_id": id_of(&import, "/id", "import")?, "requested_by": demo::OWNER, "requested_by_role": "owner"})
            }
            "variant-bulk-update" => {
                let bulk = post(format!("{vendor}/variants/bulk"), sample_body("bulk-updates-create")?, 202).await?;
                json!({"job_id": id_of(&bulk, "/id", "bulk update")?, "requested_by": demo::OWNER, "requested_by_role": "owner"})
            }
            "packing-manifest" => {
                let manifest = post(format!("{vendor}/manifests"), json!({"status": "ready"}), 202).await?;
                json!({"job_id": id_of(&manifest, "/id", "manifest")?})
            }
            "variant-generation" => {
                let ten: Vec<Value> = (0..10).map(|i| json!({ "value": format!("v{i}") })).collect();
                let product = json!({"title": format!("Generated {run}"), "options": [{"name": "One", "values": ten}, {"name": "Two", "values": ten}]});
                let created = post(format!("{vendor}/products"), product, 202).await?;
                json!({"job_id": id_of(&created, "/variant_generation/job_id", "generation job")?,
                    "product_id": id_of(&created, "/id", "product")?, "options_revision": 1,
                    "requested_by": demo::OWNER, "requested_by_role": "owner"})
            }
            "shopify-sync" => {
                let sync = post(format!("{vendor}/shopify/sync"), json!({}), 202).await?;
                json!({"job_id": id_of(&sync, "/id", "shopify sync")?})
            }
            "shopify-event" => {
                // The merchant renames the product: the event is newer than the mirror's copy.
                let rename = |p: &mut crate::fakes::shopify::Product| p.title = format!("Samples Renamed {run}");
                let changed = shopify
                    .update_product(SAMPLE_SHOP, &self.shop_product, rename)
                    .ok_or_else(|| InfraError::Other("samples: the shop's product is gone".into()))?;
                let number = self.shop_product.rsplit('/').next().unwrap_or_default();
                json!({"webhook_id": bestow::store::ids::new_id(), "topic": "products/update", "shop": SAMPLE_SHOP,
                    "event": {"kind": "product", "product_id": number, "updated_at": changed["updatedAt"]}})
            }
            "refund-request" => {
                let unit = REFUND_REQUEST_UNITS + run;
                let body = json!({"unit_numbers": [unit], "reason": "samples"});
                let refund = post(format!("{vendor}/orders/{}/refunds", self.order), body, 201).await?;
                json!({"order_id": self.order, "refund_id": id_of(&refund, "/refunds/0/id", "refund")?})
            }
            "order-split" | "gift-delivery" => {
                // A new order, paid: the payment webhook queues its split.
                let body = json!({"items": [{"product_id": self.product, "variant_id": self.variant, "quantity": 1}],
                    "sender_name": "Samples Corp", "recipients": [
                        {"name": "Ana", "email": "ana@samples.example", "shipping_method_id": "eu-standard",
                         "address": {"line1": "Torstr. 1", "city": "Berlin", "postal_code": "10119", "country": "DE"}},
                        {"name": "Ben", "email": "ben@samples.example", "shipping_method_id": "eu-standard"}]});
                let checkout = post(format!("{vendor}/storefronts/{}/orders", self.storefront), body, 201).await?;
                let intent = id_of(&checkout, "/order/payment_intent_id", "payment intent")?;
                let paid = stripe
                    .succeed_payment(&intent)
                    .ok_or_else(|| InfraError::Other("samples: the Stripe fake has no such PaymentIntent".into()))?;
                deliver_stripe(gateway, &paid.to_string()).await?;
                let order = id_of(&checkout, "/order/id", "order")?;
                if function == "gift-delivery" {
                    // Split here (its message stays queued), so the units await their delivery.
                    self.split(&order).await?;
                    json!({"order_id": order, "first_number": 1, "count": 50})
                } else {
                    json!({"order_id": order})
                }
            }
            _ => return Ok(()),
        };
        if let Some(record) = event["Records"].get_mut(0) {
            let mut envelope: Value = serde_json::from_str(record["body"].as_str().unwrap_or("{}"))?;
            envelope["payload"] = payload;
            record["body"] = Value::String(envelope.to_string());
        }
        Ok(())
    }

    /// Runs an order's split in this process, as its worker would.
    async fn split(&self, order: &str) -> Result<(), InfraError> {
        let envelope = bestow::jobs::Envelope {
            job_id: bestow::store::ids::new_id(),
            job_type: bestow::orders::jobs::ORDER_SPLIT.job_type.to_owned(),
            vendor_id: demo::VENDOR_ID.to_owned(),
            idempotency_key: order.to_owned(),
            attempt: 1,
            enqueued_at: "2026-11-26T00:00:00Z".to_owned(),
            payload: json!({"order_id": order}),
        };
        let mut message = aws_lambda_events::event::sqs::SqsMessage::default();
        message.message_id = Some(envelope.job_id.clone());
        message.body = Some(serde_json::to_string(&envelope)?);
        let mut batch = aws_lambda_events::event::sqs::SqsEvent::default();
        batch.records = vec![message];
        let deadline = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 60_000;
        let done = (bestow::orders::jobs::ORDER_SPLIT.run)(self.app.clone(), batch, deadline).await;
        match done.batch_item_failures.is_empty() {
            true => Ok(()),
            false => Err(InfraError::Other(format!("samples: splitting {order} failed"))),
        }
    }

    /// The ETag the update must name: the resource's own, read as its client would.
    async fn current_etag(&self, gateway: &Gateway, function: &str, path: &str) -> Result<String, InfraError> {
        if function == "variants-update" {
            let mut parts = path.rsplit('/');
            let (variant, product) = (parts.next().unwrap_or_default(), parts.nth(1).unwrap_or_default());
            return variant_etag(&self.app, product, variant).await;
        }
        // Options are versioned with their product.
        let read = if function == "product-options-put" { path.trim_end_matches("/options") } else { path };
        let token = if read.starts_with("/vendors/") && read != "/vendors" { &self.owner } else { &self.admin };
        let (status, headers, body) = call(gateway, token, Method::GET, read, None, None).await?;
        if status != 200 {
            return Err(InfraError::Other(format!("samples: reading {read} for its ETag: {status} {body}")));
        }
        headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| InfraError::Other(format!("samples: {read} has no ETag")))
    }

    /// Webhooks signed now, as their senders sign them.
    fn sign(&self, function: &str, event: &mut Value) {
        let body = event["body"].as_str().unwrap_or_default().to_owned();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (header, value) = match function {
            "stripe-webhook" => (
                "stripe-signature",
                bestow::integrations::stripe::signature_header(body.as_bytes(), now, DEMO_STRIPE_WEBHOOK_SECRET),
            ),
            "billing-webhook" => (
                "stripe-signature",
                bestow::integrations::stripe::signature_header(
                    body.as_bytes(),
                    now,
                    &self.signers.billing_webhook_secret,
                ),
            ),
            "shopify-webhook" => ("x-shopify-hmac-sha256", hmac_base64(&self.signers.shopify_app_secret, &body)),
            "xero-webhook" => ("x-xero-signature", hmac_base64(&self.signers.xero_webhook_key, &body)),
            _ => return,
        };
        event["headers"][header] = Value::String(value);
    }
}

/// A variant's ETag. No route reads one variant with its ETag (the list carries none): the
/// table does.
async fn variant_etag(app: &App, product: &str, variant: &str) -> Result<String, InfraError> {
    let scope = bestow::tenancy::guard::job_scope(demo::VENDOR_ID, "samples")
        .map_err(|e| InfraError::Other(format!("samples: {e:?}")))?;
    let stored = bestow::catalog::repo::CatalogRepo::new(&app.table, &scope)
        .variant(product, variant)
        .await
        .map_err(|e| InfraError::Other(format!("samples: reading the variant: {e}")))?;
    stored
        .map(|v| format!("\"v{}\"", v.version))
        .ok_or_else(|| InfraError::Other(format!("samples: no variant {variant}")))
}

/// The query pairs of `url`.
fn url_query(url: &str) -> Result<Vec<(String, String)>, InfraError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| InfraError::Other(format!("samples: {url}: {e}")))?;
    Ok(parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

fn hmac_base64(key: &str, body: &str) -> String {
    use base64::Engine;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn sample_body(function: &str) -> Result<Value, InfraError> {
    let text = std::fs::read_to_string(workspace_root().join("events").join(format!("{function}.json")))?;
    let event: Value = serde_json::from_str(&text)?;
    let body = event["body"].as_str().unwrap_or("null");
    Ok(serde_json::from_str(body)?)
}

/// The sample's own request (a CSV import) through the gateway.
async fn raw_call(gateway: &Gateway, token: &str, path: &str, function: &str) -> Result<Value, InfraError> {
    let text = std::fs::read_to_string(workspace_root().join("events").join(format!("{function}.json")))?;
    let event: Value = serde_json::from_str(&text)?;
    let mut headers = http::HeaderMap::new();
    let auth = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| InfraError::Other(e.to_string()))?;
    headers.insert("authorization", auth);
    if let Some(kind) = event["headers"]["content-type"].as_str().and_then(|k| http::HeaderValue::from_str(k).ok()) {
        headers.insert("content-type", kind);
    }
    let body = hyper::body::Bytes::from(event["body"].as_str().unwrap_or_default().to_owned());
    let response = gateway.call(&Method::POST, path, &headers, body).await;
    let status = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| InfraError::Other(e.to_string()))?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status != 202 {
        return Err(InfraError::Other(format!("samples: {function}: {status} {value}")));
    }
    Ok(value)
}

/// A Stripe event to the demo vendor's webhook, signed now.
async fn deliver_stripe(gateway: &Gateway, event: &str) -> Result<(), InfraError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = bestow::integrations::stripe::signature_header(event.as_bytes(), now, DEMO_STRIPE_WEBHOOK_SECRET);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "stripe-signature",
        http::HeaderValue::from_str(&signature).map_err(|e| InfraError::Other(e.to_string()))?,
    );
    headers.insert("content-type", http::HeaderValue::from_static("application/json"));
    let path = format!("/webhooks/stripe/{}", demo::VENDOR_ID);
    let response = gateway.call(&Method::POST, &path, &headers, hyper::body::Bytes::from(event.to_owned())).await;
    match response.status().as_u16() {
        200 => Ok(()),
        status => Err(InfraError::Other(format!("samples: the payment webhook answered {status}"))),
    }
}

/// Runs `function` in this process on `app`, as its binary would run it on Lambda.
pub async fn invoke_in_process(app: &App, function: &str, event: Value) -> Result<Answer, InfraError> {
    if let Some(worker) = bestow::jobs::registry::ALL.iter().find(|w| w.function == function) {
        let batch: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event)?;
        let deadline = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 60_000;
        let response = (worker.run)(app.clone(), batch, deadline).await;
        return Ok(Answer::Batch { failures: response.batch_item_failures.len() });
    }
    if let Some(schedule) = bestow::jobs::schedule::by_function(function) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        return Ok(match (schedule.run)(app.clone(), now).await {
            Ok(summary) => Answer::Summary(summary),
            Err(error) => Answer::Error(error),
        });
    }
    let route = bestow::routes::by_function(function)
        .or_else(|| bestow::routes::WEBHOOKS.iter().copied().find(|w| w.function == function))
        .ok_or_else(|| InfraError::Other(format!("{function} is neither a route, a webhook nor a job")))?;
    let request: lambda_http::Request =
        serde_json::from_value::<lambda_http::request::LambdaRequest>(event).map(Into::into)?;
    let response = bestow::http::handle(app, route, request).await;
    let status = response.status().as_u16();
    let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
    Ok(Answer::Http { status, body })
}

/// Every function of the template, by name.
pub fn functions() -> Result<Vec<String>, InfraError> {
    let template = crate::template::Template::load_default()?;
    let mut names: Vec<String> = template.functions().into_iter().map(|f| f.binary).collect();
    names.sort();
    // A suspended vendor is reactivated before its later updates.
    if let Some(at) = names.iter().position(|n| n == "vendors-suspend") {
        let suspend = names.remove(at);
        let reactivate = names.iter().position(|n| n == "vendors-reactivate").unwrap_or(names.len());
        names.insert(reactivate, suspend);
    }
    Ok(names)
}

/// Counts by operation, named short: `GetItem`, `SendMessageBatch`, `GetSecretValue`, and S3's
/// by method (`S3 PUT`, `S3 HEAD`).
pub fn short_counts(counts: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut short = BTreeMap::new();
    for (operation, n) in counts {
        let name = match operation.split_once(' ') {
            Some((method, _path)) => format!("S3 {method}"),
            None => operation.rsplit('.').next().unwrap_or(operation).to_owned(),
        };
        *short.entry(name).or_default() += n;
    }
    short
}

/// A local stack with every fake connected, the demo tenant and the samples' state, and its
/// pollers stopped (so counted calls are the measured function's alone).
pub struct SampleStack {
    pub stack: LocalStack,
    pub gateway: Gateway,
    pub samples: Samples,
    pub stripe: StripeFake,
    pub shopify: crate::fakes::shopify::ShopifyFake,
    pub xero: crate::fakes::xero::XeroFake,
}

const SHOPIFY_KEY: &str = "samples-shopify-key";
/// The shop the sample events name.
const SAMPLE_SHOP: &str = "acme-gifts.myshopify.com";
const SHOPIFY_SECRET: &str = "samples-shopify-secret";
const XERO_CLIENT_ID: &str = "SAMPLESXEROCLIENT";
const XERO_CLIENT_SECRET: &str = "samples-xero-client-secret";
const XERO_WEBHOOK_KEY: &str = "samples-xero-webhook-key";
const BILLING_KEY: &str = "sk_test_samplesplatform0000";
const BILLING_WEBHOOK_SECRET: &str = "whsec_samplesplatform0000";

impl SampleStack {
    /// `prefix` names the stack's resources; `counter` counts its functions' AWS calls; mail
    /// goes to the SMTP sink on `smtp_port`.
    pub async fn start(
        prefix: &str,
        counter: Option<bestow::store::counter::CallCounter>,
        smtp_port: u16,
    ) -> Result<SampleStack, InfraError> {
        let stripe = StripeFake::start().await?;
        let shopify = crate::fakes::shopify::ShopifyFake::start(SHOPIFY_KEY, SHOPIFY_SECRET).await?;
        let xero = crate::fakes::xero::XeroFake::start(XERO_CLIENT_ID, XERO_CLIENT_SECRET).await?;
        let plans = [("starter", "price_samples_starter", 4900), ("growth", "price_samples_growth", 19900)];
        for (plan, price, amount) in plans {
            stripe.add_price(price, amount, "eur", "month", &format!("Bestow {plan}"));
        }
        let stack = LocalStack::provision(crate::stack::StackOptions {
            prefix: prefix.to_owned(),
            stage: "samples".into(),
            secrets_prefix: Some(format!("bestow/{prefix}")),
            visibility_override: Some(2),
            counter,
            stripe_api_base: Some(stripe.base_url().to_owned()),
            shopify: Some(crate::stack::LocalShopify {
                api_base: shopify.base_url().to_owned(),
                api_key: SHOPIFY_KEY.to_owned(),
                api_secret: SHOPIFY_SECRET.to_owned(),
            }),
            xero: Some(crate::stack::LocalXero {
                base: xero.base_url().to_owned(),
                client_id: XERO_CLIENT_ID.to_owned(),
                client_secret: XERO_CLIENT_SECRET.to_owned(),
                webhook_key: XERO_WEBHOOK_KEY.to_owned(),
            }),
            billing: Some(crate::stack::LocalBilling {
                secret_key: BILLING_KEY.to_owned(),
                webhook_secret: BILLING_WEBHOOK_SECRET.to_owned(),
                plan_prices: plans
                    .iter()
                    .map(|(plan, price, _)| format!("{plan}={price}"))
                    .collect::<Vec<_>>()
                    .join(","),
            }),
            // Nothing calls back: callbacks are handed to the functions directly.
            public_base_url: Some("http://127.0.0.1:9".to_owned()),
        })
        .await?;
        let gateway = Gateway::new(stack.app.clone(), crate::devtoken::DevKeys::random(), bestow::routes::ALL);
        let pollers = stack.spawn_pollers();
        let signers = Signers {
            shopify_app_secret: SHOPIFY_SECRET.to_owned(),
            xero_webhook_key: XERO_WEBHOOK_KEY.to_owned(),
            billing_webhook_secret: BILLING_WEBHOOK_SECRET.to_owned(),
        };
        let samples = Samples::prepare(&stack, &gateway, &stripe, &shopify, signers, smtp_port).await;
        for poller in pollers {
            poller.abort();
        }
        Ok(SampleStack { samples: samples?, stack, gateway, stripe, shopify, xero })
    }

    /// `function`'s sample event for its `run`-th invocation (0 to MAX_RUNS - 1).
    pub async fn event(&self, function: &str, run: usize) -> Result<Value, InfraError> {
        self.samples.event(&self.gateway, &self.stripe, &self.shopify, function, run).await
    }
}
