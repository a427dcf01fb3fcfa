//! Round trips as assertions: every function's sample event, run in process as a cold start
//! (a fresh `App`, so secrets are read as a new Lambda instance reads them), with every AWS
//! call counted, against the calls it should make. Counts are deterministic.

use std::collections::BTreeMap;

use bestow::App;
use bestow::store::counter::CallCounter;
use bestow_infra::samples::{SampleStack, functions, invoke_in_process, short_counts};

/// Every function's calls on its sample event, as `Operation [× n]` in name order; calls
/// beyond the ideal; what the calls are. The ideal: a read is one call (an item read once,
/// a page one Query), N items written are ⌈N/25⌉ batch writes or ⌈N/100⌉ transactions, a
/// job's overhead is 2 calls (its claim and its completion), an idempotent request's 2 (the
/// same), a write by a vendor's staff 1 (the guard reads the vendor's status, and the
/// handler reuses that read), a secret is read once per cold start.
const EXPECTED: &[(&str, &str, u64, &str)] = &[
    ("audit-list", "Query", 0, "the page"),
    (
        "billing-webhook",
        "GetItem 2, GetSecretValue, PutItem",
        0,
        "platform secret; event receipt; customer → vendor; receipt written",
    ),
    (
        "bulk-updates-create",
        "GetItem, PutItem, SendMessageBatch, TransactWriteItems, UpdateItem",
        0,
        "guard; idempotency 2; job + input + audit in one transaction; queued",
    ),
    ("cycle-close", "GetItem, PutItem, UpdateItem", 0, "job 2; the statement exists already (closed by the fixture)"),
    (
        "email-dispatch",
        "GetItem, GetSecretValue, PutItem, UpdateItem",
        0,
        "job 2; SMTP settings; SMTP secret; then SMTP",
    ),
    (
        "gift-delivery",
        "BatchGetItem, GetItem 2, PutItem, S3 PUT 4, SendMessageBatch, TransactWriteItems, UpdateItem",
        0,
        "job 2; the 2 units in one batch read; storefront; vendor; QR PNG + SVG per unit; mail queued; units marked sent in one transaction",
    ),
    (
        "gift-reminders",
        "GetItem, PutItem, Query 2, UpdateItem",
        0,
        "job 2; units awaiting an address, units ready (2 index pages); vendor",
    ),
    ("gift-sweep", "Query, SendMessageBatch", 0, "vendors page; one job per vendor, 10 per batch"),
    (
        "gifts-accept",
        "GetItem 6, Query, TransactWriteItems",
        1,
        "code; unit; shipping zone; variant (stock); unit + stock + audit in one transaction; storefront, product with variants, listing for the answer. Excess: the variant is read alone and again with its product",
    ),
    ("gifts-get", "GetItem 5, Query", 0, "code; unit; storefront; product with variants; listing; shipping zone"),
    (
        "gifts-thank-you",
        "GetItem 5, Query, TransactWriteItems",
        0,
        "code; unit; note + audit in one transaction; the answer's storefront, product with variants, listing, zone",
    ),
    ("images-confirm", "GetItem 2, S3 HEAD", 0, "guard; product; the upload's object (409: nothing was uploaded)"),
    (
        "images-create",
        "GetItem 2, TransactWriteItems",
        0,
        "guard; product; image record + audit (the upload URL is presigned, no call)",
    ),
    (
        "images-delete",
        "GetItem 3, Query, S3 DELETE, TransactWriteItems",
        1,
        "guard; product; transaction; the object; listing card refreshed from product with variants and listing. Excess: the product is read again for the card",
    ),
    (
        "imports-create",
        "GetItem, PutItem, SendMessageBatch, TransactWriteItems, UpdateItem",
        0,
        "guard; idempotency 2; job + input + audit; queued",
    ),
    ("jobs-get", "GetItem", 0, "the job"),
    (
        "listings-delete",
        "GetItem 3, TransactWriteItems",
        0,
        "guard; listing; product (its listing count); listing + product + audit",
    ),
    ("listings-list", "GetItem, Query", 0, "storefront (404); the page"),
    (
        "listings-put",
        "GetItem 3, Query, TransactWriteItems",
        0,
        "guard; storefront; product with variants (the card); listing; listing + product + audit",
    ),
    ("manifests-create", "GetItem, SendMessageBatch, TransactWriteItems", 0, "guard; job + audit; queued"),
    ("manifests-get", "GetItem", 0, "the job (the PDF link is presigned, no call)"),
    (
        "order-split",
        "GetItem, PutItem, Query, SendMessageBatch, TransactWriteItems 2, UpdateItem",
        0,
        "job 2; order; recipients; units + code claims (4 items, 1 transaction); order split + audit (from the order read); delivery queued",
    ),
    ("order-units-list", "GetItem, Query", 0, "order (404); the page"),
    (
        "orders-create",
        "BatchWriteItem, GetItem 6, GetSecretValue, PutItem, Query, TransactWriteItems, UpdateItem",
        0,
        "guard; idempotency 2; storefront; listing; product with variants; plan; shipping; Stripe settings; Stripe secret; recipients (1 batch); order + intent + audit",
    ),
    ("orders-get", "GetItem", 0, "the order"),
    ("orders-list", "Query", 0, "the page"),
    (
        "packing-manifest",
        "GetItem 3, PutItem, Query 2, S3 PUT, UpdateItem 3",
        0,
        "job 2; input; ready units; job running; product; vendor; the PDF; job state read and written done",
    ),
    ("payout-cycles", "Query, SendMessageBatch", 0, "vendors page; one job per vendor"),
    ("payout-terms-get", "GetItem", 0, "the terms"),
    ("payout-terms-put", "GetItem 2, PutItem", 0, "guard (the vendor); current terms; the terms"),
    (
        "payouts-create",
        "GetItem 2, TransactWriteItems",
        0,
        "guard; statement; statement + index + ledger entry + its claim",
    ),
    (
        "plan-checkout",
        "GetItem 2, GetSecretValue, PutItem 2",
        0,
        "guard; plan state; platform Stripe secret; customer index; plan state",
    ),
    ("plan-get", "GetItem 2, Query 2", 0, "plan state; usage; storefront and product counts"),
    ("plans-list", "", 0, "static"),
    (
        "product-import",
        "BatchGetItem, GetItem 4, PutItem, Query, UpdateItem 3",
        0,
        "job 2; input; job running; vendor; handle; product; SKUs (1 batch); variants (read once: the update generated none); job done",
    ),
    (
        "product-options-put",
        "GetItem 3, PutItem, Query 2, TransactWriteItems",
        1,
        "guard; product; variants; product + variants + audit; card refresh: product with variants, listing, listing. Excess: the product is read again for the card",
    ),
    (
        "products-create",
        "GetItem 2, PutItem, TransactWriteItems, UpdateItem",
        0,
        "guard; idempotency 2; plan; product + handle + audit + variant",
    ),
    ("products-get", "GetItem", 0, "the product"),
    ("products-list", "Query", 0, "the page"),
    (
        "products-update",
        "GetItem 3, Query, TransactWriteItems",
        1,
        "guard; product; product + audit; card refresh: product with variants, listing. Excess: the product is read again for the card",
    ),
    ("refund-request", "GetItem, PutItem, UpdateItem", 0, "job 2; the refund (settled by its request already)"),
    (
        "refunds-create",
        "BatchGetItem 2, GetItem 6, GetSecretValue, PutItem, TransactWriteItems 2, UpdateItem",
        3,
        "guard; idempotency 2; order; units; refund + units + audit; Stripe settings + secret; settle: refund, units, order read again, units + order + ledger, refund. Excess: the settling step reads the refund, its units and the order again",
    ),
    ("shipping-get", "GetItem", 0, "the rules"),
    ("shipping-put", "GetItem, PutItem", 0, "guard; the rules (conditional)"),
    ("shipping-quote", "GetItem", 0, "the rules"),
    ("shopify-callback", "GetSecretValue", 0, "app secret (the hmac is wrong: 401)"),
    ("shopify-event", "GetItem, PutItem, UpdateItem", 0, "job 2; connection (not connected)"),
    ("shopify-get", "GetItem", 0, "the connection"),
    ("shopify-install", "GetItem, GetSecretValue, PutItem", 0, "guard; app secret; OAuth state"),
    ("shopify-order", "GetItem 2, PutItem, UpdateItem", 0, "job 2; unit; connection (not connected)"),
    ("shopify-sync", "GetItem 2, PutItem, UpdateItem", 0, "job 2; connection (not connected); job"),
    ("shopify-sync-start", "GetItem 2", 0, "guard; connection (not connected: 409)"),
    ("shopify-webhook", "GetItem, GetSecretValue", 0, "app secret; shop → vendor (unknown shop: acknowledged)"),
    ("smtp-get", "GetItem", 0, "the settings"),
    ("smtp-put", "GetItem 2, PutItem, PutSecretValue", 0, "guard; settings; secret version; settings"),
    ("smtp-test", "GetItem 2, SendMessageBatch", 0, "guard; settings; mail queued"),
    ("statements-all", "Query", 0, "the platform index page"),
    ("statements-close", "GetItem 2", 0, "guard; statement (closed already: answered as is)"),
    ("statements-get", "GetItem", 0, "the statement (links presigned, no call)"),
    ("statements-list", "Query", 0, "the page"),
    ("storage-get", "GetItem", 0, "the settings"),
    ("storage-put", "GetItem, PutItem", 0, "guard; settings (conditional)"),
    ("storefront-products-get", "GetItem 2, Query", 0, "slug → storefront; listing; product with variants"),
    ("storefront-products-list", "GetItem, Query", 0, "slug → storefront; the listed page"),
    (
        "storefronts-create",
        "GetItem 2, PutItem, TransactWriteItems, UpdateItem",
        0,
        "guard; idempotency 2; plan; storefront + slug + host + audit",
    ),
    ("storefronts-get", "GetItem", 0, "the storefront"),
    ("storefronts-list", "Query", 0, "the page"),
    ("storefronts-update", "GetItem 2, TransactWriteItems", 0, "guard; storefront; storefront + slug + host + audit"),
    ("stripe-get", "GetItem", 0, "the settings"),
    ("stripe-put", "GetItem 2, PutItem, PutSecretValue", 0, "guard; settings; secret version; settings"),
    (
        "stripe-webhook",
        "GetItem 3, GetSecretValue, TransactWriteItems",
        0,
        "settings; webhook secret; intent → order; order; event receipt (paid already)",
    ),
    (
        "units-fulfil",
        "BatchGetItem, GetItem 2, SendMessageBatch, TransactWriteItems",
        0,
        "guard; units (1 batch); units + audit; storefront and vendor for the mail; mail queued",
    ),
    ("units-list", "Query", 0, "the page"),
    (
        "variant-bulk-update",
        "GetItem, PutItem, Query, UpdateItem 3",
        0,
        "job 2; input; products (index page); job running, job done",
    ),
    (
        "variant-generation",
        "BatchWriteItem 4, GetItem, PutItem, Query, TransactWriteItems, UpdateItem 4",
        0,
        "job 2; product; job running; variants; 100 variants in ⌈100/25⌉ batches; progress; product + audit; job done",
    ),
    ("variants-list", "GetItem, Query", 0, "product (options, 404); the page"),
    (
        "variants-update",
        "GetItem 4, PutItem, Query, TransactWriteItems",
        1,
        "guard; product; variant; variant + product + SKU claims + audit; card refresh: product with variants, listing, listing. Excess: the product is read again for the card",
    ),
    ("vendors-create", "PutItem, TransactWriteItems, UpdateItem", 0, "idempotency 2; profile + directory"),
    ("vendors-get", "GetItem", 0, "the profile"),
    ("vendors-list", "Query", 0, "the page"),
    ("vendors-reactivate", "GetItem, TransactWriteItems", 0, "profile; profile + directory + audit"),
    ("vendors-suspend", "GetItem, TransactWriteItems", 0, "profile; profile + directory + audit"),
    ("vendors-update", "GetItem, TransactWriteItems", 0, "guard's profile reused; profile + directory"),
    ("xero-callback", "GetItem", 0, "OAuth state (unknown: 400)"),
    ("xero-connect", "GetSecretValue, PutItem", 0, "app secret; OAuth state"),
    ("xero-get", "GetItem", 0, "the connection"),
    ("xero-invoice", "GetItem, PutItem, UpdateItem", 0, "job 2; statement (no fee in the cycle: nothing to invoice)"),
    (
        "xero-invoice-sync",
        "GetItem, PutItem, UpdateItem",
        0,
        "job 2; invoice → statement (an invoice of no statement: nothing to do)",
    ),
    ("xero-payment", "GetItem, PutItem, UpdateItem", 0, "job 2; statement (no payout recorded: nothing to pay)"),
    ("xero-webhook", "GetItem, GetSecretValue", 0, "app secret; connection"),
];

/// `Operation [n]` in name order, the table's notation.
fn notation(counts: &BTreeMap<String, u64>) -> String {
    let calls: Vec<String> =
        counts.iter().map(|(op, n)| if *n == 1 { op.clone() } else { format!("{op} {n}") }).collect();
    calls.join(", ")
}

#[tokio::test]
async fn every_function_makes_only_the_round_trips_it_needs() {
    let smtp_port: u16 = std::env::var("BESTOW_TEST_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("BESTOW_TEST_SMTP_PORT is not set: run the suite with `infra/bestow test`");
    let prefix = format!("bestow-test-{}", &bestow::store::ids::new_id()[14..]);
    let sample = SampleStack::start(&prefix, None, smtp_port).await.expect("the samples' stack");
    let counter = CallCounter::default();
    let mut measured = BTreeMap::new();
    let mut wrong = Vec::new();
    for function in functions().unwrap() {
        let event = sample.event(&function, 0).await.unwrap();
        // A cold start: nothing cached from an earlier function.
        let app = App::counted((*sample.stack.app.config).clone(), &sample.stack.sdk, &counter);
        counter.reset();
        let answer = invoke_in_process(&app, &function, event).await.unwrap();
        if let Err(why) = answer.check(&function) {
            wrong.push(why);
        }
        if std::env::var("BESTOW_TRAIL").is_ok_and(|f| f == "all" || f.split(',').any(|one| one == function)) {
            println!("{function}:\n  {}", counter.trail().join("\n  "));
        }
        measured.insert(function, short_counts(&counter.snapshot()));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let listed: Vec<&str> = EXPECTED.iter().map(|(f, ..)| *f).collect();
    let functions: Vec<&str> = measured.keys().map(String::as_str).collect();
    assert_eq!(listed, functions, "one row per function of the template, in name order");
    let mut differ = Vec::new();
    println!("{:<26} {:>5} {:>6}  calls", "function", "calls", "excess");
    for (function, expected, excess, _) in EXPECTED {
        let counts = &measured[*function];
        let total: u64 = counts.values().sum();
        println!("{function:<26} {total:>5} {excess:>6}  {}", notation(counts));
        if notation(counts) != *expected {
            differ.push(format!("{function}: {} instead of {expected}", notation(counts)));
        }
    }
    // Warm: the same instance again reads no secret within its TTL.
    for function in ["orders-create", "refunds-create", "stripe-webhook"] {
        let app = App::counted((*sample.stack.app.config).clone(), &sample.stack.sdk, &counter);
        for run in 1..3 {
            let event = sample.event(function, run).await.unwrap();
            counter.reset();
            invoke_in_process(&app, function, event).await.unwrap().check(function).unwrap();
            let secrets = counter.total("secretsmanager");
            assert_eq!(secrets, if run == 1 { 1 } else { 0 }, "{function}, invocation {run} of one instance");
        }
    }
    let excess: u64 = EXPECTED.iter().map(|(_, _, e, _)| e).sum();
    println!("calls beyond the ideal: {excess}, in {} functions", EXPECTED.iter().filter(|r| r.2 > 0).count());
    assert!(
        differ.is_empty(),
        "round trips changed (rerun with BESTOW_TRAIL=<function> to see each call):\n{}",
        differ.join("\n")
    );
}
