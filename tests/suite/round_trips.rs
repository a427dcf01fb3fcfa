//! Round trips as assertions: every function's sample event, run in process as a cold start
//! (a fresh `App`, so secrets are read as a new Lambda instance reads them), with every AWS
//! call counted, against the calls it should make. Counts are deterministic.

use std::collections::BTreeMap;

use bestow::App;
use bestow::store::counter::CallCounter;
use bestow_infra::samples::{SampleStack, functions, invoke_in_process, short_counts};

/// Every function's calls on its sample event, as `Operation [n]` in name order, and what the
/// calls are: each row is the ideal for its function, so a call more (or a read saved) fails
/// here. The ideal: a read is one call (an item read once, a page one Query), N items written
/// are ⌈N/25⌉ batch writes or ⌈N/100⌉ transactions, a job's overhead is 2 calls (its claim
/// and its completion), an idempotent request's 2 (the same), a write by a vendor's staff 1
/// (the guard reads the vendor's status, and the handler reuses that read), a secret is read
/// once per cold start. A read after a write that must see other writers' changes (a listing
/// card rebuilt from the variants as stored) is a read of its own.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("audit-list", "Query", "the page"),
    (
        "billing-webhook",
        "GetItem 2, GetSecretValue, PutItem",
        "platform secret; event receipt; customer → vendor; receipt written",
    ),
    (
        "bulk-updates-create",
        "GetItem, PutItem, SendMessageBatch, TransactWriteItems, UpdateItem",
        "guard; idempotency 2; job + input + audit in one transaction; queued",
    ),
    ("cycle-close", "GetItem, PutItem, UpdateItem", "job 2; the statement exists already (closed by the fixture)"),
    ("email-dispatch", "GetItem, GetSecretValue, PutItem, UpdateItem", "job 2; SMTP settings; SMTP secret; then SMTP"),
    (
        "gift-delivery",
        "BatchGetItem, GetItem 2, PutItem, S3 PUT 4, SendMessageBatch, TransactWriteItems, UpdateItem",
        "job 2; the 2 units in one batch read; storefront; vendor; QR PNG + SVG per unit; mail queued; units marked sent in one transaction",
    ),
    (
        "gift-reminders",
        "GetItem, PutItem, Query 2, UpdateItem",
        "job 2; units awaiting an address, units ready (2 index pages); vendor",
    ),
    ("gift-sweep", "Query, SendMessageBatch", "vendors page; one job per vendor, 10 per batch"),
    (
        "gifts-accept",
        "GetItem 5, Query, TransactWriteItems",
        "code; unit; product with variants (choice, stock and the page after); shipping zone; unit + stock + audit in one transaction; storefront, listing for the answer",
    ),
    ("gifts-get", "GetItem 5, Query", "code; unit; storefront; product with variants; listing; shipping zone"),
    (
        "gifts-thank-you",
        "GetItem 5, Query, TransactWriteItems",
        "code; unit; note + audit in one transaction; the answer's storefront, product with variants, listing, zone",
    ),
    ("images-confirm", "GetItem 2, S3 HEAD", "guard; product; the upload's object (409: nothing was uploaded)"),
    (
        "images-create",
        "GetItem 2, TransactWriteItems",
        "guard; product; image record + audit (the upload URL is presigned, no call)",
    ),
    (
        "images-delete",
        "GetItem 2, S3 DELETE, TransactWriteItems",
        "guard; product; product + audit; the object (no card shows an image)",
    ),
    (
        "imports-create",
        "GetItem, PutItem, SendMessageBatch, TransactWriteItems, UpdateItem",
        "guard; idempotency 2; job + input + audit; queued",
    ),
    ("jobs-get", "GetItem", "the job"),
    (
        "listings-delete",
        "GetItem 3, TransactWriteItems",
        "guard; listing; product (its listing count); listing + product + audit",
    ),
    ("listings-list", "GetItem, Query", "storefront (404); the page"),
    (
        "listings-put",
        "GetItem 3, Query, TransactWriteItems",
        "guard; storefront; product with variants (the card); listing; listing + product + audit",
    ),
    ("manifests-create", "GetItem, SendMessageBatch, TransactWriteItems", "guard; job + audit; queued"),
    ("manifests-get", "GetItem", "the job (the PDF link is presigned, no call)"),
    (
        "order-split",
        "GetItem, PutItem, Query, SendMessageBatch, TransactWriteItems 2, UpdateItem",
        "job 2; order; recipients; units + code claims (4 items, 1 transaction); order split + audit (from the order read); delivery queued",
    ),
    ("order-units-list", "GetItem, Query", "order (404); the page"),
    (
        "orders-create",
        "BatchWriteItem, GetItem 6, GetSecretValue, PutItem, Query, TransactWriteItems, UpdateItem",
        "guard; idempotency 2; storefront; listing; product with variants; plan; shipping; Stripe settings; Stripe secret; recipients (1 batch); order + intent + audit",
    ),
    ("orders-get", "GetItem", "the order"),
    ("orders-list", "Query", "the page"),
    (
        "packing-manifest",
        "GetItem 3, PutItem, Query 2, S3 PUT, UpdateItem 3",
        "job 2; input; ready units; job running; product; vendor; the PDF; job state read and written done",
    ),
    ("payout-cycles", "Query, SendMessageBatch", "vendors page; one job per vendor"),
    ("payout-terms-get", "GetItem", "the terms"),
    ("payout-terms-put", "GetItem 2, PutItem", "guard (the vendor); current terms; the terms"),
    (
        "payouts-create",
        "GetItem 2, TransactWriteItems",
        "guard; statement; statement + index + ledger entry + its claim",
    ),
    (
        "plan-checkout",
        "GetItem 2, GetSecretValue, PutItem 2",
        "guard; plan state; platform Stripe secret; customer index; plan state",
    ),
    ("plan-get", "GetItem 2, Query 2", "plan state; usage; storefront and product counts"),
    ("plans-list", "", "static"),
    (
        "product-import",
        "BatchGetItem, GetItem 4, PutItem, Query, UpdateItem 3",
        "job 2; input; job running; vendor; handle; product; SKUs (1 batch); variants (read once: the update generated none); job done",
    ),
    (
        "product-options-put",
        "BatchGetItem, GetItem 2, PutItem, Query 2, TransactWriteItems",
        "guard; product; variants; product + variants + audit; card rebuild: listings, the partition as stored after the write, the card. The partition is read after the write on purpose: a copy from before it would let two concurrent variant edits each save a card without the other's",
    ),
    (
        "products-create",
        "GetItem 2, PutItem, TransactWriteItems, UpdateItem",
        "guard; idempotency 2; plan; product + handle + audit + variant",
    ),
    ("products-get", "GetItem", "the product"),
    ("products-list", "Query", "the page"),
    (
        "products-update",
        "BatchGetItem, GetItem 2, TransactWriteItems",
        "guard; product; product + audit; listings (the card's product part is patched from the product written, unchanged here)",
    ),
    ("refund-request", "GetItem, PutItem, UpdateItem", "job 2; the refund (settled by its request already)"),
    (
        "refunds-create",
        "BatchGetItem, GetItem 3, GetSecretValue, PutItem, TransactWriteItems 2, UpdateItem",
        "guard; idempotency 2; order; units; refund + units + audit; Stripe settings + secret; settled from what was written: units + order + ledger + refund + audit",
    ),
    ("shipping-get", "GetItem", "the rules"),
    ("shipping-put", "GetItem, PutItem", "guard; the rules (conditional)"),
    ("shipping-quote", "GetItem", "the rules"),
    ("shopify-callback", "GetSecretValue", "app secret (the hmac is wrong: 401)"),
    (
        "shopify-event",
        "GetItem 3, GetSecretValue, PutItem, Query, TransactWriteItems 2, UpdateItem",
        "job 2; connection + token; vendor currency; the mirrored product; its variants; product + audit; connection (last webhook time, from the copy read)",
    ),
    ("shopify-get", "GetItem", "the connection"),
    ("shopify-install", "GetItem, GetSecretValue, PutItem", "guard; app secret; OAuth state"),
    (
        "shopify-order",
        "GetItem 3, GetSecretValue, PutItem, TransactWriteItems, UpdateItem",
        "job 2; unit; connection + token; unit frozen (an order pending); the line's variant (not mirrored here: no shop order)",
    ),
    (
        "shopify-sync",
        "BatchGetItem, GetItem 2, GetSecretValue, PutItem, Query, TransactWriteItems 2, UpdateItem 3",
        "job 2; connection + token; connection (running); vendor currency; the page's mirrored products; progress; the mirror's products (archive what the shop lost); connection (finished, from the copy written); job finished",
    ),
    (
        "shopify-sync-start",
        "GetItem 2, SendMessageBatch, TransactWriteItems",
        "guard; connection; job + input; queued (the answer is the record written)",
    ),
    (
        "shopify-webhook",
        "GetItem 2, GetSecretValue, PutItem, SendMessageBatch",
        "app secret; shop → vendor; delivery seen?; queued; delivery recorded (after queueing: a crash between queues it twice, never loses it)",
    ),
    ("smtp-get", "GetItem", "the settings"),
    ("smtp-put", "GetItem 2, PutItem, PutSecretValue", "guard; settings; secret version; settings"),
    ("smtp-test", "GetItem 2, SendMessageBatch", "guard; settings; mail queued"),
    ("statements-all", "Query", "the platform index page"),
    ("statements-close", "GetItem 2", "guard; statement (closed already: answered as is)"),
    ("statements-get", "GetItem", "the statement (links presigned, no call)"),
    ("statements-list", "Query", "the page"),
    ("storage-get", "GetItem", "the settings"),
    ("storage-put", "GetItem, PutItem", "guard; settings (conditional)"),
    ("storefront-products-get", "GetItem 2, Query", "slug → storefront; listing; product with variants"),
    ("storefront-products-list", "GetItem, Query", "slug → storefront; the listed page"),
    (
        "storefronts-create",
        "GetItem 2, PutItem, TransactWriteItems, UpdateItem",
        "guard; idempotency 2; plan; storefront + slug + host + audit",
    ),
    ("storefronts-get", "GetItem", "the storefront"),
    ("storefronts-list", "Query", "the page"),
    ("storefronts-update", "GetItem 2, TransactWriteItems", "guard; storefront; storefront + slug + host + audit"),
    ("stripe-get", "GetItem", "the settings"),
    ("stripe-put", "GetItem 2, PutItem, PutSecretValue", "guard; settings; secret version; settings"),
    (
        "stripe-webhook",
        "GetItem 3, GetSecretValue, TransactWriteItems",
        "settings; webhook secret; intent → order; order; event receipt (paid already)",
    ),
    (
        "units-fulfil",
        "BatchGetItem, GetItem 2, SendMessageBatch, TransactWriteItems",
        "guard; units (1 batch); units + audit; storefront and vendor for the mail; mail queued",
    ),
    ("units-list", "Query", "the page"),
    (
        "variant-bulk-update",
        "GetItem, PutItem, Query, UpdateItem 3",
        "job 2; input; products (index page); job running, job done",
    ),
    (
        "variant-generation",
        "BatchWriteItem 4, GetItem, PutItem, Query, TransactWriteItems, UpdateItem 4",
        "job 2; product; job running; variants; 100 variants in ⌈100/25⌉ batches; progress; product + audit; job done",
    ),
    ("variants-list", "GetItem, Query", "product (options, 404); the page"),
    (
        "variants-update",
        "BatchGetItem, GetItem 3, PutItem, Query, TransactWriteItems",
        "guard; product; variant; variant + product check + SKU claims + audit; card rebuild: listings, the partition as stored after the write (see product-options-put), the card",
    ),
    ("vendors-create", "PutItem, TransactWriteItems, UpdateItem", "idempotency 2; profile + directory"),
    ("vendors-get", "GetItem", "the profile"),
    ("vendors-list", "Query", "the page"),
    ("vendors-reactivate", "GetItem, TransactWriteItems", "profile; profile + directory + audit"),
    ("vendors-suspend", "GetItem, TransactWriteItems", "profile; profile + directory + audit"),
    ("vendors-update", "GetItem, TransactWriteItems", "guard's profile reused; profile + directory"),
    ("xero-callback", "GetItem", "OAuth state (unknown: 400)"),
    ("xero-connect", "GetSecretValue, PutItem", "app secret; OAuth state"),
    ("xero-get", "GetItem", "the connection"),
    ("xero-invoice", "GetItem, PutItem, UpdateItem", "job 2; statement (no fee in the cycle: nothing to invoice)"),
    (
        "xero-invoice-sync",
        "GetItem, PutItem, UpdateItem",
        "job 2; invoice → statement (an invoice of no statement: nothing to do)",
    ),
    ("xero-payment", "GetItem, PutItem, UpdateItem", "job 2; statement (no payout recorded: nothing to pay)"),
    ("xero-webhook", "GetItem, GetSecretValue", "app secret; connection"),
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
    println!("{:<26} {:>5}  calls", "function", "calls");
    for (function, expected, _) in EXPECTED {
        let counts = &measured[*function];
        let total: u64 = counts.values().sum();
        println!("{function:<26} {total:>5}  {}", notation(counts));
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
    assert!(
        differ.is_empty(),
        "round trips changed (rerun with BESTOW_TRAIL=<function> to see each call):\n{}",
        differ.join("\n")
    );
}
