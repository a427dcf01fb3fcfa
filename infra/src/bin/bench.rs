//! `bestow-bench`: measurements that are counts or ratios from one run, not timed tests.
//!
//!   bestow-bench jobs [N]   N email jobs (default 200), each delivered twice, through the
//!                           local stack's queue, pollers, worker runtime and SMTP sink
//!   bestow-bench catalog    generating and persisting 2,048 variants (DynamoDB calls against
//!                           the ideal ⌈2048/25⌉ batch writes, time), and the DynamoDB calls of
//!                           a public catalogue page and product page
//!
//!   bestow-bench orders [N] a checkout of N recipients (default 10,000), its payment and its
//!                           split: DynamoDB calls against the ideal ⌈2N/100⌉ transactions,
//!                           time, and every code checked unique and claimed
//!
//!   bestow-bench shopify [N] a full Shopify sync of N products (default 1,000; every 100th with
//!                           120 variants) from the local Shopify fake at Shopify Plus's rate,
//!                           then a second sync: GraphQL calls, DynamoDB calls, writes, time
//!
//!   bestow-bench cold [N] [function...]
//!                           N (default 5) cold starts of every function's release bootstrap
//!                           (or of those named) through a loopback Lambda Runtime API: init,
//!                           first invocation, total, CPU time, peak RSS, binary and zip size;
//!                           a table and target/bench/coldstart.json
//!
//!   bestow-bench warm [K]   CPU instructions (callgrind) per warm request of a catalogue read
//!                           and of a checkout: a process answering 1 event against one
//!                           answering 1 + K (default 10)
//!
//! Needs the emulator and the SMTP sink (`infra/bestow bench jobs` starts both).

use std::time::Instant;

use bestow::jobs::Envelope;
use bestow::store::counter::CallCounter;
use bestow_infra::InfraError;
use bestow_infra::devtoken::{DevKeys, DevUser};
use bestow_infra::gateway::Gateway;
use bestow_infra::runtime_api::{invoke_once, serve_events};
use bestow_infra::seed::call;
use bestow_infra::stack::{LocalStack, StackOptions};
use http::Method;
use serde_json::json;

/// A fresh stack in the emulator with every AWS call counted, its gateway, and the vendor
/// `bench` created through the API.
struct Bench {
    stack: LocalStack,
    /// The local Stripe the stack's functions call.
    stripe: bestow_infra::fakes::stripe::StripeFake,
    /// The local Shopify, with the bench's app installed nowhere yet.
    shopify: bestow_infra::fakes::shopify::ShopifyFake,
    counter: CallCounter,
    gateway: Gateway,
    keys: DevKeys,
    admin: String,
}

impl Bench {
    async fn start() -> Result<Self, InfraError> {
        let counter = CallCounter::default();
        let prefix = format!("bestow-bench-{}", &bestow::store::ids::new_id()[16..]);
        let stripe = bestow_infra::fakes::stripe::StripeFake::start().await?;
        let shopify = bestow_infra::fakes::shopify::ShopifyFake::start(BENCH_SHOPIFY_KEY, BENCH_SHOPIFY_SECRET).await?;
        let stack = LocalStack::provision(StackOptions {
            prefix,
            stage: "bench".into(),
            secrets_prefix: None,
            visibility_override: Some(30),
            counter: Some(counter.clone()),
            stripe_api_base: Some(stripe.base_url().to_owned()),
            shopify: Some(bestow_infra::stack::LocalShopify {
                api_base: shopify.base_url().to_owned(),
                api_key: BENCH_SHOPIFY_KEY.to_owned(),
                api_secret: BENCH_SHOPIFY_SECRET.to_owned(),
            }),
            // Nothing calls back in a bench: the redirect is handed to the gateway directly.
            xero: None,
            billing: None,
            public_base_url: Some("http://127.0.0.1:9".to_owned()),
        })
        .await?;
        let keys = DevKeys::random();
        let gateway = Gateway::new(stack.app.clone(), keys.clone(), bestow::routes::ALL);
        let admin = keys.issue(&DevUser { sub: "bench", group: "platform_admin", vendor_id: None }, 600);
        let vendor = json!({"id": "bench", "name": "Bench", "contact_email": "b@bench.example", "country": "DE", "currency": "EUR"});
        call(&gateway, &admin, Method::POST, "/vendors", Some(vendor), None).await?;
        Ok(Self { stack, stripe, shopify, counter, gateway, keys, admin })
    }
}

fn mail_count(dir: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".json")).count())
        .unwrap_or(0)
}

async fn jobs(n: usize) -> Result<(), InfraError> {
    let smtp_port: u16 = std::env::var("BESTOW_BENCH_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| InfraError::Other("BESTOW_BENCH_SMTP_PORT is not set: run infra/bestow bench jobs".into()))?;
    let maildir = std::env::var("BESTOW_BENCH_MAILDIR")
        .map_err(|_| InfraError::Other("BESTOW_BENCH_MAILDIR is not set".into()))?;
    let Bench { stack, counter, gateway, keys: _, admin, .. } = Bench::start().await?;
    // The vendor's SMTP settings, through the API.
    let smtp = json!({"host": "127.0.0.1", "port": smtp_port, "username": "bench", "password": "pw", "from_email": "b@bench.example", "from_name": "Bench", "security": "none"});
    let (status, _, body) = call(&gateway, &admin, Method::PUT, "/vendors/bench/smtp", Some(smtp), None).await?;
    if status != 200 {
        return Err(InfraError::Other(format!("smtp settings: {status} {body}")));
    }

    // N distinct jobs, each sent twice (a duplicate delivery per job), ten per call.
    let queue = stack.provisioned.queue_urls.get("EmailDispatchQueue").cloned().unwrap_or_default();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let bodies: Vec<String> = (0..n)
        .map(|i| {
            let envelope = Envelope {
                job_id: bestow::store::ids::new_id(),
                job_type: "email_dispatch".into(),
                vendor_id: "bench".into(),
                idempotency_key: format!("bench-{i}"),
                attempt: 1,
                enqueued_at: "2026-11-25T00:00:00Z".into(),
                payload: json!({"message_key": format!("bench-{i}"), "to_email": format!("r{i}@bench.example"), "to_name": null,
                                "template": "smtp_test", "vars": {"vendor_name": "Bench", "smtp_host": "127.0.0.1"}}),
            };
            serde_json::to_string(&envelope).unwrap_or_default()
        })
        .collect();
    let before_mail = mail_count(&maildir);
    for chunk in bodies.iter().chain(bodies.iter()).collect::<Vec<_>>().chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(*body)
                    .build()
                    .ok()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(&queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| InfraError::Emulator(e.to_string()))?;
    }
    counter.reset();
    let started = Instant::now();
    let pollers = stack.spawn_pollers();
    // Done when every job has mailed and the queue is empty (duplicates consumed too).
    loop {
        let mailed = mail_count(&maildir) - before_mail;
        let depth = bestow_infra::ops::depth(&sqs, &queue).await?;
        if mailed >= n && depth == 0 {
            break;
        }
        if started.elapsed().as_secs() > 600 {
            return Err(InfraError::Other(format!("only {mailed} of {n} mailed after 10 minutes")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    pollers.iter().for_each(|p| p.abort());
    let mailed = mail_count(&maildir) - before_mail;
    let calls = counter.snapshot();
    let get = |op: &str| calls.get(&format!("DynamoDB_20120810.{op}")).copied().unwrap_or(0);
    let runtime_calls = get("PutItem") + get("UpdateItem") + get("DeleteItem");
    println!(
        "jobs benchmark: {n} jobs, each delivered twice ({} messages), through moto + the local pollers + the SMTP sink",
        2 * n
    );
    println!("  emails sent                      {mailed} (one per job: duplicates had no effect)");
    println!(
        "  DynamoDB calls by operation      {:?}",
        calls.iter().filter(|(k, _)| k.starts_with("DynamoDB")).collect::<Vec<_>>()
    );
    println!(
        "  worker runtime calls per job     {:.2} (claim + complete; goal 2)",
        get("PutItem").saturating_sub(n as u64) as f64 / n as f64 + get("UpdateItem") as f64 / n as f64
    );
    println!(
        "  runtime calls per duplicate      {:.2} (one refused claim)",
        (get("PutItem") as f64 - n as f64) / n as f64
    );
    println!("  all runtime calls per message    {:.2}", runtime_calls as f64 / (2 * n) as f64);
    println!("  handler reads per job            {:.2} (its SMTP settings: GetItem)", get("GetItem") as f64 / n as f64);
    println!(
        "  secret reads                     {} (the cache held the password this process had just set; a fresh worker reads it once per TTL)",
        calls.get("secretsmanager.GetSecretValue").copied().unwrap_or(0)
    );
    println!(
        "  throughput                       {:.0} messages/s, {:.0} jobs/s ({:.2} s, debug build, one process)",
        (2 * n) as f64 / elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if mailed != n {
        return Err(InfraError::Other(format!("{mailed} emails for {n} jobs")));
    }
    Ok(())
}

fn expect(what: &str, status: u16, want: u16, body: &serde_json::Value) -> Result<(), InfraError> {
    if status == want { Ok(()) } else { Err(InfraError::Other(format!("{what}: {status} {body}"))) }
}

fn dynamo_calls(counter: &CallCounter) -> (u64, Vec<(String, u64)>) {
    let calls: Vec<(String, u64)> = counter
        .snapshot()
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("DynamoDB_20120810.").map(|op| (op.to_owned(), v)))
        .collect();
    (calls.iter().map(|(_, v)| v).sum(), calls)
}

async fn catalog() -> Result<(), InfraError> {
    let Bench { stack, counter, gateway, keys, .. } = Bench::start().await?;
    let owner = keys.issue(&DevUser { sub: "bench-owner", group: "owner", vendor_id: Some("bench") }, 600);

    // 2,048 variants: 64 × 32 option values. The API answers 202 and queues the job; the
    // job's handler is run here, in this process, with every AWS call counted.
    let values = |p: &str, n: usize| (0..n).map(|i| json!({"value": format!("{p}{i}")})).collect::<Vec<_>>();
    let body = json!({"title": "Bench", "options": [{"name": "A", "values": values("a", 64)}, {"name": "B", "values": values("b", 32)}]});
    let (status, _, created) =
        call(&gateway, &owner, Method::POST, "/vendors/bench/products", Some(body), None).await?;
    expect("product", status, 202, &created)?;
    let product_id = created["id"].as_str().unwrap_or_default().to_owned();
    let job = bestow::catalog::jobs::VariantGeneration {
        job_id: created["variant_generation"]["job_id"].as_str().unwrap_or_default().to_owned(),
        product_id: product_id.clone(),
        options_revision: 1,
        requested_by: "bench-owner".into(),
        requested_by_role: "owner".into(),
    };
    let scope = bestow::tenancy::guard::job_scope("bench", "variant_generation")
        .map_err(|e| InfraError::Other(e.to_string()))?;
    counter.reset();
    let started = Instant::now();
    let result = bestow::catalog::service::run_generation(&stack.app, &scope, &job)
        .await
        .map_err(|e| InfraError::Other(e.to_string()))?;
    let generation_time = started.elapsed();
    let (total, by_op) = dynamo_calls(&counter);
    let batch = by_op.iter().find(|(op, _)| op == "BatchWriteItem").map_or(0, |(_, n)| *n);
    let ideal = 2048u64.div_ceil(25);
    println!("catalog benchmark (moto, debug build, one process)");
    println!("  variants generated               {}", result["created"]);
    println!(
        "  BatchWriteItem calls             {batch} (ideal ⌈2048/25⌉ = {ideal}; ratio {:.2})",
        batch as f64 / ideal as f64
    );
    println!("  all DynamoDB calls of the job    {total} {by_op:?}");
    println!(
        "    overhead beyond the batches    {} (product read, variant pages, progress, lock release + audit, job record)",
        total - batch
    );
    println!("    + the worker runtime           2 (idempotency claim and completion, per job)");
    println!(
        "  time to generate and persist     {:.0} ms ({:.2} ms per variant)",
        generation_time.as_secs_f64() * 1e3,
        generation_time.as_secs_f64() * 1e3 / 2048.0
    );

    // Where a regeneration's time goes: reading 2,048 variants back (two 1 MB Query pages).
    let started = Instant::now();
    let variants = bestow::catalog::repo::CatalogRepo::new(&stack.app.table, &scope)
        .all_variants(&product_id)
        .await
        .map_err(|e| InfraError::Other(e.to_string()))?;
    let read_and_decode = started.elapsed();
    let started = Instant::now();
    let partition = bestow::store::keys::variants_partition(&scope, &product_id);
    let prefix = Some(bestow::store::keys::VARIANT_SK_PREFIX);
    stack.app.table.query_all(&partition, prefix).await.map_err(|e| InfraError::Other(e.to_string()))?;
    let read_only = started.elapsed();
    println!(
        "  reading the {} variants back     {:.0} ms (the same two Query pages without decoding: {:.0} ms: the emulator's time)",
        variants.len(),
        read_and_decode.as_secs_f64() * 1e3,
        read_only.as_secs_f64() * 1e3
    );

    // Regenerating the same option set: nothing to write.
    let (status, headers, product) =
        call(&gateway, &owner, Method::GET, &format!("/vendors/bench/products/{product_id}"), None, None).await?;
    expect("product read", status, 200, &product)?;
    let etag = headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let options: Vec<serde_json::Value> = product["options"]
        .as_array()
        .map(|o| o.iter().map(|o| json!({"id": o["id"], "name": o["name"], "values": o["values"]})).collect())
        .unwrap_or_default();
    counter.reset();
    let started = Instant::now();
    let (status, _, again) = call(
        &gateway,
        &owner,
        Method::PUT,
        &format!("/vendors/bench/products/{product_id}/options"),
        Some(json!({"options": options})),
        Some(etag.as_str()),
    )
    .await?;
    expect("regeneration", status, 200, &again)?;
    let (total, by_op) = dynamo_calls(&counter);
    println!(
        "  regenerating unchanged options   {total} DynamoDB calls {by_op:?}, {:.0} ms, 0 variant writes",
        started.elapsed().as_secs_f64() * 1e3
    );

    // A storefront listing 60 products; the public pages as an anonymous visitor sees them.
    let (status, _, storefront) = call(
        &gateway,
        &owner,
        Method::POST,
        "/vendors/bench/storefronts",
        Some(json!({"name": "Bench", "slug": "bench-shop"})),
        None,
    )
    .await?;
    expect("storefront", status, 201, &storefront)?;
    let storefront_id = storefront["id"].as_str().unwrap_or_default().to_owned();
    let mut first = String::new();
    for i in 0..60 {
        let body = json!({"title": format!("Item {i}"), "status": "active", "options": [{"name": "Size", "values": values("s", 3)}], "variant_defaults": {"price_minor": 1000 + i}});
        let (status, _, p) = call(&gateway, &owner, Method::POST, "/vendors/bench/products", Some(body), None).await?;
        expect("listed product", status, 201, &p)?;
        let id = p["id"].as_str().unwrap_or_default().to_owned();
        let path = format!("/vendors/bench/storefronts/{storefront_id}/products/{id}");
        let (status, _, l) = call(&gateway, &owner, Method::PUT, &path, Some(json!({"sort_order": i})), None).await?;
        expect("listing", status, 201, &l)?;
        if i == 0 {
            first = id;
        }
    }
    let mut pages = 0;
    let mut items = 0;
    let mut cursor: Option<String> = None;
    counter.reset();
    loop {
        let path = match &cursor {
            Some(c) => format!("/storefronts/bench-shop/products?limit=25&cursor={c}"),
            None => "/storefronts/bench-shop/products?limit=25".to_owned(),
        };
        let (status, _, page) = call(&gateway, "", Method::GET, &path, None, None).await?;
        expect("public page", status, 200, &page)?;
        pages += 1;
        items += page["items"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let (total, by_op) = dynamo_calls(&counter);
    println!("  public catalogue: {items} products in {pages} pages of 25");
    println!(
        "    DynamoDB calls per page        {:.2} {by_op:?} (resolver GetItem + one Query)",
        total as f64 / pages as f64
    );
    counter.reset();
    let (status, _, page) =
        call(&gateway, "", Method::GET, &format!("/storefronts/bench-shop/products/{first}"), None, None).await?;
    expect("public product", status, 200, &page)?;
    let (total, by_op) = dynamo_calls(&counter);
    println!(
        "    DynamoDB calls per product page {total} {by_op:?} (resolver, listing, product + variants in one Query)"
    );
    Ok(())
}

const BENCH_SHOPIFY_KEY: &str = "bestow-bench-app";
const BENCH_SHOPIFY_SECRET: &str = "shpss_bench_app_secret";

async fn shopify(n: usize) -> Result<(), InfraError> {
    let Bench { stack, shopify, counter, gateway, keys, .. } = Bench::start().await?;
    let shop = "bench-gifts.myshopify.com";
    shopify.add_shop(shop, "EUR");
    shopify.seed_catalogue(shop, n, 100, 120);
    let variants: usize =
        shopify.products(shop).iter().map(|p| p["variants"]["nodes"].as_array().map_or(0, Vec::len)).sum();
    // Shopify Plus's GraphQL bucket refills at 1,000 points/s (standard plans: 100/s).
    shopify.set_throttle(Some(shop), 2_000.0, 1_000.0);
    let owner = keys.issue(&DevUser { sub: "bench-owner", group: "owner", vendor_id: Some("bench") }, 600);
    let (status, _, started) =
        call(&gateway, &owner, Method::POST, "/vendors/bench/shopify/install", Some(json!({ "shop": shop })), None)
            .await?;
    expect("install", status, 200, &started)?;
    let authorize = reqwest::Url::parse(started["authorize_url"].as_str().unwrap_or_default())
        .map_err(|e| InfraError::Other(e.to_string()))?;
    let param =
        |name: &str| authorize.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default();
    let redirect = shopify.authorize_redirect(shop, &param("redirect_uri"), &param("state"), &param("scope"));
    let query = redirect.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let (status, _, done) = call(&gateway, "", Method::GET, &format!("/shopify/callback?{query}"), None, None).await?;
    expect("callback", status, 200, &done)?;
    let scope =
        bestow::tenancy::guard::job_scope("bench", "shopify_sync").map_err(|e| InfraError::Other(e.to_string()))?;
    println!("Shopify sync of {n} products ({variants} variants) at 1,000 points/s:");
    for run in ["first", "second"] {
        let job = bestow::shopify::jobs::ShopifySync { job_id: bestow::store::ids::new_id() };
        // The job resource its progress goes to, as the sync route creates it.
        let record = bestow::jobs::records::JobRecord::queued(&scope, job.job_id.clone(), "shopify_sync", None);
        bestow::jobs::records::JobRecords::new(&stack.app.table, &scope)
            .create(&record)
            .await
            .map_err(|e| InfraError::Other(e.to_string()))?;
        let requests_before = shopify.requests().len();
        counter.reset();
        let started = Instant::now();
        let result = bestow::shopify::service::run_full_sync(&stack.app, &scope, &job)
            .await
            .map_err(|e| InfraError::Other(e.to_string()))?;
        let elapsed = started.elapsed();
        let (total, by_op) = dynamo_calls(&counter);
        println!(
            "  {run:<6} {:.1} s; GraphQL requests {} {}; writes: {} products, {} variants",
            elapsed.as_secs_f64(),
            shopify.requests().len() - requests_before,
            result["shopify"],
            result["stats"]["products_written"],
            result["stats"]["variants_written"],
        );
        println!("         DynamoDB calls {total} {by_op:?}");
    }
    println!(
        "  ideal for a first sync: ⌈{variants}/25⌉ = {} BatchWriteItem, ⌈{n}/25⌉ = {} product transactions (25 products, their handle claims and audit entries each)",
        variants.div_ceil(25),
        n.div_ceil(25)
    );
    Ok(())
}

/// Calls of one operation (`TransactWriteItems`) in a counter snapshot.
fn calls(counter: &CallCounter, operation: &str) -> u64 {
    counter.snapshot().get(&format!("DynamoDB_20120810.{operation}")).copied().unwrap_or(0)
}

async fn orders(n: usize) -> Result<(), InfraError> {
    let Bench { stack, stripe, counter, gateway, keys, .. } = Bench::start().await?;
    let owner = keys.issue(&DevUser { sub: "bench-owner", group: "owner", vendor_id: Some("bench") }, 600);
    let buyer = keys.issue(&DevUser { sub: "bench-buyer", group: "buyer", vendor_id: Some("bench") }, 600);
    let step = |what: &'static str, want: u16| {
        move |(status, _, body): (u16, http::HeaderMap, serde_json::Value)| {
            if status == want { Ok(body) } else { Err(InfraError::Other(format!("{what}: {status} {body}"))) }
        }
    };
    let secret = "whsec_bench0123456789";
    call(
        &gateway,
        &owner,
        Method::PUT,
        "/vendors/bench/shipping",
        Some(bestow_infra::seed::demo_shipping_rules()),
        None,
    )
    .await
    .and_then(step("shipping", 200))?;
    let stripe_settings =
        json!({"publishable_key": "pk_test_bench0123", "secret_key": "sk_test_bench0123", "webhook_secret": secret});
    call(&gateway, &owner, Method::PUT, "/vendors/bench/stripe", Some(stripe_settings), None)
        .await
        .and_then(step("stripe", 200))?;
    let product = json!({"title": "Bench Box", "status": "active", "variant_defaults": {"price_minor": 2500, "weight_grams": 400, "inventory_policy": "continue"}});
    let product = call(&gateway, &owner, Method::POST, "/vendors/bench/products", Some(product), None)
        .await
        .and_then(step("product", 201))?;
    let product_id = product["id"].as_str().unwrap_or_default().to_owned();
    let variants =
        call(&gateway, &owner, Method::GET, &format!("/vendors/bench/products/{product_id}/variants"), None, None)
            .await
            .and_then(step("variants", 200))?;
    let variant_id = variants["items"][0]["id"].as_str().unwrap_or_default().to_owned();
    let storefront = call(
        &gateway,
        &owner,
        Method::POST,
        "/vendors/bench/storefronts",
        Some(json!({"name": "Bench", "slug": "bench-gifts"})),
        None,
    )
    .await
    .and_then(step("storefront", 201))?;
    let storefront_id = storefront["id"].as_str().unwrap_or_default().to_owned();
    call(
        &gateway,
        &owner,
        Method::PUT,
        &format!("/vendors/bench/storefronts/{storefront_id}/products/{product_id}"),
        Some(json!({})),
        None,
    )
    .await
    .and_then(step("listing", 201))?;

    let recipients: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut r = json!({"name": format!("Recipient {i}"), "email": format!("r{i}@bench.example"), "shipping_method_id": "eu-standard", "gift_message": "Thank you for a great year!"});
            if i % 2 == 0 {
                r["address"] = json!({"line1": format!("Street {i}"), "city": "Berlin", "postal_code": "10115", "country": "DE"});
            }
            r
        })
        .collect();
    let body = json!({"items": [{"product_id": product_id, "variant_id": variant_id, "quantity": 1}], "sender_name": "Bench Corp", "recipients": recipients});
    counter.reset();
    let started = Instant::now();
    let checkout = call(
        &gateway,
        &buyer,
        Method::POST,
        &format!("/vendors/bench/storefronts/{storefront_id}/orders"),
        Some(body),
        None,
    )
    .await
    .and_then(step("checkout", 201))?;
    let checkout_time = started.elapsed();
    let checkout_calls = counter.snapshot();
    let order_id = checkout["order"]["id"].as_str().unwrap_or_default().to_owned();
    let intent = checkout["order"]["payment_intent_id"].as_str().unwrap_or_default().to_owned();

    // Stripe says paid: the signed webhook moves the order and would queue the split job; the
    // job's work is run here, in this process, with every AWS call counted.
    let event =
        stripe.succeed_payment(&intent).ok_or_else(|| InfraError::Other("no PaymentIntent".into()))?.to_string();
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut headers = http::HeaderMap::new();
    let signature = bestow::integrations::stripe::signature_header(event.as_bytes(), t, secret);
    headers.insert(
        "stripe-signature",
        http::HeaderValue::from_str(&signature).map_err(|e| InfraError::Other(e.to_string()))?,
    );
    let paid = gateway.call(&Method::POST, "/webhooks/stripe/bench", &headers, event.into()).await;
    if paid.status() != 200 {
        return Err(InfraError::Other(format!("webhook: {}", paid.status())));
    }
    let scope =
        bestow::tenancy::guard::job_scope("bench", "order_split").map_err(|e| InfraError::Other(e.to_string()))?;
    counter.reset();
    let started = Instant::now();
    let outcome = bestow::orders::jobs::split_order(&stack.app, &scope, &order_id)
        .await
        .map_err(|e| InfraError::Other(e.to_string()))?;
    let split_time = started.elapsed();
    let split_calls = counter.snapshot();
    let transactions = calls(&counter, "TransactWriteItems");
    let dynamo_total = counter.total("DynamoDB");
    counter.reset();
    let again = bestow::orders::jobs::split_order(&stack.app, &scope, &order_id)
        .await
        .map_err(|e| InfraError::Other(e.to_string()))?;
    let repeat_calls = counter.total("DynamoDB");

    // Every code unique, and each claimed globally for its own unit.
    let repo = bestow::orders::repo::OrderRepo::new(&stack.app.table, &scope);
    let mut codes = std::collections::BTreeMap::new();
    let mut cursor = None;
    loop {
        let (units, next) =
            repo.units(&order_id, 100, cursor.as_ref()).await.map_err(|e| InfraError::Other(e.to_string()))?;
        for unit in units {
            codes.insert(unit.value.code.clone(), unit.value.number);
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let claim_keys: Vec<_> = codes.keys().map(|c| bestow::store::keys::redemption_code_key(c)).collect();
    let claims = stack.app.table.batch_get(&claim_keys).await.map_err(|e| InfraError::Other(e.to_string()))?;
    let claimed_right = claims
        .into_iter()
        .filter_map(|item| bestow::store::decode::<bestow::fulfillment::model::CodeClaim>(item).ok())
        .filter(|c| c.value.order_id == order_id)
        .count();
    if codes.len() != n || claimed_right != n || again.units != n as u32 || !again.already_split {
        return Err(InfraError::Other(format!(
            "{} distinct codes, {claimed_right} claimed for the order, for {n} recipients",
            codes.len()
        )));
    }

    let items = 2 * n as u64;
    let ideal = items.div_ceil(100);
    println!("orders: a checkout of {n} recipients, its payment and its split, on the local stack");
    println!("  checkout   {:>8.2?}  DynamoDB calls {checkout_calls:?}", checkout_time);
    println!(
        "  split      {:>8.2?}  {} units + {} code claims = {items} items: {transactions} TransactWriteItems (ideal ⌈{items}/100⌉ = {ideal}, ratio {:.3})",
        split_time,
        n,
        n,
        transactions as f64 / ideal as f64
    );
    println!("             all DynamoDB calls of the split: {dynamo_total} {split_calls:?}");
    println!("             chunks written {}, found written {}", outcome.chunks_written, outcome.chunks_found);
    println!("  repeated   a second split of the same order: {repeat_calls} DynamoDB call(s), nothing written");
    println!("  codes      {} distinct of {n}, each claimed once for its own unit", codes.len());
    Ok(())
}

/// Median, min and max of a figure over the runs with a right answer.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    match values.as_slice() {
        [] => (f64::NAN, f64::NAN, f64::NAN),
        v => (v[v.len() / 2], v[0], v[v.len() - 1]),
    }
}

/// The deployment zip of a bootstrap (deflated, as `cargo lambda build --output-format zip`
/// and `sam build` make it), written beside it; its size.
fn zip_size(bootstrap: &std::path::Path, zip: &std::path::Path) -> Result<u64, InfraError> {
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n    z.write(sys.argv[1], 'bootstrap')";
    let status = std::process::Command::new("python3").args(["-c", script]).arg(bootstrap).arg(zip).status()?;
    if !status.success() {
        return Err(InfraError::Other(format!("zipping {}", bootstrap.display())));
    }
    Ok(std::fs::metadata(zip)?.len())
}

/// Cold starts of every function's release `bootstrap` (or of `only`), N fresh processes
/// each, through a loopback Runtime API, against the local stack with the samples' state.
async fn cold(n: usize, only: &[String]) -> Result<(), InfraError> {
    use bestow_infra::samples::{Answer, SampleStack, expected, functions};
    let root = bestow_infra::template::workspace_root();
    let bin_dir = std::env::var("BESTOW_BENCH_BIN_DIR").map(Into::into).unwrap_or_else(|_| root.join("target/release"));
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(out_dir.join("zips"))?;
    let names = if only.is_empty() { functions()? } else { only.to_vec() };
    let prefix = format!("bestow-cold-{}", &bestow::store::ids::new_id()[16..]);
    let smtp_port: u16 = std::env::var("BESTOW_BENCH_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| InfraError::Other("BESTOW_BENCH_SMTP_PORT is not set: run infra/bestow bench cold".into()))?;
    let sample = SampleStack::start(&prefix, None, smtp_port).await?;
    let env: std::collections::HashMap<String, String> = sample.stack.function_env().into_iter().collect();
    let goals =
        [("init ≤ 10 ms", 10.0), ("first response ≤ 20 ms", 20.0), ("peak RSS ≤ 16 MiB", 16.0), ("zip ≤ 5 MB", 5.0)];
    let mut met = [0usize; 4];
    let mut report = Vec::new();
    println!(
        "cold starts: {n} fresh processes per function, 128 MB setting, against the local stack (medians, [min–max])"
    );
    println!(
        "{:<26} {:>17} {:>17} {:>17} {:>8} {:>13} {:>9} {:>7} {:>5}",
        "function", "init ms", "first invoke ms", "total ms", "cpu ms", "peak RSS MiB", "binary MB", "zip MB", "ok"
    );
    for function in &names {
        let bootstrap = bin_dir.join(function);
        let binary_bytes = std::fs::metadata(&bootstrap)
            .map_err(|e| {
                InfraError::Other(format!("{}: {e} (build with `infra/bestow bench cold`)", bootstrap.display()))
            })?
            .len();
        let zip_bytes = zip_size(&bootstrap, &out_dir.join("zips").join(format!("{function}.zip")))?;
        let mut runs = Vec::new();
        let mut wrong = Vec::new();
        for run in 0..n {
            let event = sample.event(function, run).await?;
            let invocation = invoke_once(&bootstrap, &env, event, std::time::Duration::from_secs(30)).await?;
            match Answer::from_runtime(function, invocation.outcome.clone()).check(function) {
                Ok(()) => runs.push(invocation),
                Err(why) => wrong.push(why),
            }
        }
        let ms = |f: &dyn Fn(&bestow_infra::runtime_api::Invocation) -> std::time::Duration| {
            spread(runs.iter().map(|r| f(r).as_secs_f64() * 1000.0).collect())
        };
        let init = ms(&|r| r.init);
        let first = ms(&|r| r.first_invocation);
        let total = ms(&|r| r.total);
        let cpu = ms(&|r| r.cpu);
        let rss = spread(runs.iter().map(|r| r.peak_rss_kib as f64 / 1024.0).collect());
        let (binary_mb, zip_mb) = (binary_bytes as f64 / 1e6, zip_bytes as f64 / 1e6);
        for (i, figure) in [init.0, total.0, rss.0, zip_mb].into_iter().enumerate() {
            met[i] += usize::from(figure <= goals[i].1);
        }
        let cell = |(median, min, max): (f64, f64, f64)| format!("{median:.1} [{min:.1}–{max:.1}]");
        println!(
            "{function:<26} {:>17} {:>17} {:>17} {:>8.1} {:>13.1} {binary_mb:>9.2} {zip_mb:>7.2} {:>2}/{n}",
            cell(init),
            cell(first),
            cell(total),
            cpu.0,
            rss.0,
            runs.len()
        );
        for why in &wrong {
            println!("    wrong answer, not counted: {why}");
        }
        let figure = |(median, min, max): (f64, f64, f64)| json!({"median": median, "min": min, "max": max});
        report.push(json!({
            "function": function,
            "answer": format!("{:?}", expected(function).0),
            "runs": n, "right_answers": runs.len(), "wrong_answers": wrong,
            "init_ms": figure(init), "first_invocation_ms": figure(first), "total_ms": figure(total),
            "cpu_ms": figure(cpu), "peak_rss_mib": figure(rss),
            "bootstrap_bytes": binary_bytes, "zip_bytes": zip_bytes,
        }));
    }
    println!("goals met (medians), of {} functions:", names.len());
    for ((goal, _), count) in goals.iter().zip(met) {
        println!("  {goal:<24} {count}");
    }
    let path = out_dir.join("coldstart.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json!({"runs_per_function": n, "functions": report}))?)?;
    println!("JSON: {}", path.display());
    Ok(())
}

/// The instructions callgrind counted for a whole process (its `summary:` line).
fn callgrind_total(path: &std::path::Path) -> Result<u64, InfraError> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| InfraError::Other(format!("{}: no summary line", path.display())))
}

/// CPU instructions per warm request of a catalogue read and of a checkout, counted by
/// callgrind on the release bootstraps: one process answers 1 event, another 1 + K; the
/// difference over K is one warm request. The I/O is answered by the local stack and the
/// fakes, whose instructions are not the function's.
async fn warm(k: usize) -> Result<(), InfraError> {
    use bestow_infra::samples::{Answer, SampleStack};
    let root = bestow_infra::template::workspace_root();
    let bin_dir = std::env::var("BESTOW_BENCH_BIN_DIR").map(Into::into).unwrap_or_else(|_| root.join("target/release"));
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let smtp_port: u16 = std::env::var("BESTOW_BENCH_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| InfraError::Other("BESTOW_BENCH_SMTP_PORT is not set: run infra/bestow bench warm".into()))?;
    let prefix = format!("bestow-warm-{}", &bestow::store::ids::new_id()[16..]);
    let sample = SampleStack::start(&prefix, None, smtp_port).await?;
    let env = sample.stack.function_env();
    println!("warm cost: instructions (callgrind) of a process answering 1 event and 1 + {k} events");
    println!("{:<26} {:>16} {:>16} {:>20}", "function", "1 event", format!("{} events", k + 1), "per warm request");
    let mut report = Vec::new();
    for function in ["storefront-products-list", "orders-create"] {
        let bootstrap = bin_dir.join(function);
        let mut totals = Vec::new();
        for count in [1, 1 + k] {
            let mut events = Vec::with_capacity(count);
            for _ in 0..count {
                events.push(sample.event(function, 0).await?);
            }
            let out = out_dir.join(format!("callgrind-{function}-{count}.out"));
            let mut command = tokio::process::Command::new("valgrind");
            command
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(&bootstrap)
                .envs(&env)
                .stderr(std::process::Stdio::null());
            let answers = serve_events(command, function, events, std::time::Duration::from_secs(600)).await?;
            for answer in answers {
                Answer::from_runtime(function, answer).check(function).map_err(InfraError::Other)?;
            }
            totals.push(callgrind_total(&out)?);
        }
        let per_request = totals[1].saturating_sub(totals[0]) / k as u64;
        println!("{function:<26} {:>16} {:>16} {per_request:>20}", totals[0], totals[1]);
        report.push(json!({"function": function, "one_event": totals[0], "events": k + 1, "all_events": totals[1], "per_warm_request": per_request}));
    }
    let path = out_dir.join("warm.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json!({"warm_requests": k, "functions": report}))?)?;
    println!("JSON: {}", path.display());
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["jobs"] => jobs(200).await,
        ["jobs", n] => match n.parse() {
            Ok(n) if n > 0 => jobs(n).await,
            _ => Err(InfraError::Other(format!("not a count: {n}"))),
        },
        ["catalog"] => catalog().await,
        ["shopify"] => shopify(1_000).await,
        ["shopify", n] => match n.parse() {
            Ok(n) if n > 0 && n <= 10_000 => shopify(n).await,
            _ => Err(InfraError::Other(format!("not a count of 1 to 10,000: {n}"))),
        },
        ["orders"] => orders(10_000).await,
        ["orders", n] => match n.parse() {
            Ok(n) if n > 0 && n <= 10_000 => orders(n).await,
            _ => Err(InfraError::Other(format!("not a count of 1 to 10,000: {n}"))),
        },
        ["warm"] => warm(10).await,
        ["warm", n] => match n.parse() {
            Ok(n) if n > 0 && n <= 100 => warm(n).await,
            _ => Err(InfraError::Other(format!("not a count of 1 to 100: {n}"))),
        },
        ["cold", rest @ ..] => {
            let (n, only) = match rest.first().map(|n| n.parse::<usize>()) {
                Some(Ok(n)) => (n, &rest[1..]),
                _ => (5, rest),
            };
            let only: Vec<String> = only.iter().map(|f| (*f).to_owned()).collect();
            if n == 0 || n > bestow_infra::samples::MAX_RUNS {
                Err(InfraError::Other(format!("N is 1 to {}", bestow_infra::samples::MAX_RUNS)))
            } else {
                cold(n, &only).await
            }
        }
        _ => Err(InfraError::Other(
            "usage: bestow-bench jobs [N] | catalog | orders [N] | shopify [N] | cold [N] [function...] | warm [K]"
                .into(),
        )),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bestow-bench: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
