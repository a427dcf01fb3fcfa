//! Vendor lifecycle through the API: onboarding, listing with cursors, suspension, quotes.

use base64::Engine;
use bestow_tests::{Method, Stack};
use serde_json::json;

use crate::support::shipping_rules;

#[tokio::test]
async fn onboarding_listing_pages_and_duplicate_ids() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    for i in 0..5 {
        stack.vendor(&format!("page-{i}")).await;
    }
    // A generated id when none is given.
    let generated = stack
        .call(Method::POST, "/vendors")
        .token(&admin)
        .json(&json!({"name": "No Slug", "contact_email": "a@b.example", "country": "FR", "currency": "EUR"}))
        .send()
        .await;
    generated.assert_status(201);
    let id = generated.json["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 26);
    assert_eq!(generated.json["timezone"], "UTC");
    assert_eq!(generated.headers["location"], format!("/vendors/{id}").as_str());

    let duplicate = stack
        .call(Method::POST, "/vendors")
        .token(&admin)
        .json(&json!({"id": "page-0", "name": "Again", "contact_email": "a@b.example", "country": "DE", "currency": "EUR"}))
        .send()
        .await;
    assert!(duplicate.assert_problem(409).ends_with("/conflict"));

    // Pages of 2 visit every vendor exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/vendors?limit=2&cursor={c}"),
            None => "/vendors?limit=2".to_owned(),
        };
        let page = stack.call(Method::GET, &path).token(&admin).send().await;
        page.assert_status(200);
        pages += 1;
        seen.extend(page.json["items"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()));
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    let mut expected: Vec<String> = (0..5).map(|i| format!("page-{i}")).chain([id]).collect();
    expected.sort();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "each vendor once: {seen:?}");

    // Cursors are opaque and bound to their listing: a forged one pointing into a tenant's
    // partition, or garbage, is refused.
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"PK":"V#page-1","SK":"PROFILE"}"#);
    let reply = stack.call(Method::GET, &format!("/vendors?cursor={forged}")).token(&admin).send().await;
    assert!(reply.assert_problem(400).ends_with("/malformed-request"));
    stack.call(Method::GET, "/vendors?cursor=%25%25").token(&admin).send().await.assert_problem(400);
    stack.call(Method::GET, "/vendors?limit=1000").token(&admin).send().await.assert_problem(422);
}

#[tokio::test]
async fn suspension_freezes_staff_writes_but_keeps_reads_and_data() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    let owner = stack.vendor("frozen").await;
    stack
        .call(Method::PUT, "/vendors/frozen/shipping")
        .token(&owner)
        .json(&shipping_rules())
        .send()
        .await
        .assert_status(200);

    stack.call(Method::POST, "/vendors/frozen/suspend").token(&admin).json(&json!({})).send().await.assert_problem(422);
    let suspended = stack
        .call(Method::POST, "/vendors/frozen/suspend")
        .token(&admin)
        .json(&json!({"reason": "unpaid plan"}))
        .send()
        .await;
    suspended.assert_status(200);
    assert_eq!(suspended.json["status"], "suspended");
    assert_eq!(suspended.json["suspended_reason"], "unpaid plan");
    // Suspending again changes nothing.
    let again = stack
        .call(Method::POST, "/vendors/frozen/suspend")
        .token(&admin)
        .json(&json!({"reason": "unpaid plan"}))
        .send()
        .await;
    assert_eq!(suspended.etag(), "\"v2\"");
    assert_eq!(again.etag(), "\"v2\"");

    let etag = stack.call(Method::GET, "/vendors/frozen/shipping").token(&owner).send().await.assert_status(200).etag();
    let reply = stack
        .call(Method::PUT, "/vendors/frozen/shipping")
        .token(&owner)
        .header("if-match", &etag)
        .json(&shipping_rules())
        .send()
        .await;
    reply.assert_problem(403);
    assert!(reply.text.contains("suspended"));
    // Reads, including quotes, keep working.
    stack
        .call(Method::POST, "/vendors/frozen/shipping/quote")
        .token(&owner)
        .json(&json!({"country": "DE", "weight_grams": 100, "order_value_minor": 100}))
        .send()
        .await
        .assert_status(200);
    let listed = stack.call(Method::GET, "/vendors").token(&admin).send().await;
    assert_eq!(listed.json["items"][0]["status"], "suspended");

    let reactivated = stack.call(Method::POST, "/vendors/frozen/reactivate").token(&admin).send().await;
    reactivated.assert_status(200);
    assert_eq!(reactivated.json["status"], "active");
    assert!(reactivated.json["suspended_reason"].is_null());
    stack
        .call(Method::PUT, "/vendors/frozen/shipping")
        .token(&owner)
        .header("if-match", &etag)
        .json(&shipping_rules())
        .send()
        .await
        .assert_status(200);

    // Unknown vendors: 404 for admins too, and nothing is created for them.
    stack
        .call(Method::POST, "/vendors/ghost/suspend")
        .token(&admin)
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .assert_problem(404);
    stack
        .call(Method::PUT, "/vendors/ghost/shipping")
        .token(&admin)
        .json(&shipping_rules())
        .send()
        .await
        .assert_problem(404);
    assert!(stack.all_items().await.iter().all(|item| !format!("{:?}", item.get("PK")).contains("ghost")));
}

#[tokio::test]
async fn shipping_quote_prices_by_zone_weight_value_and_threshold() {
    let stack = Stack::start().await;
    let owner = stack.vendor("quote").await;
    let quote = |country: &str, grams: i64, value: i64| {
        stack
            .call(Method::POST, "/vendors/quote/shipping/quote")
            .token(&owner)
            .json(&json!({"country": country, "weight_grams": grams, "order_value_minor": value}))
    };
    quote("DE", 100, 100).send().await.assert_problem(404);
    stack
        .call(Method::PUT, "/vendors/quote/shipping")
        .token(&owner)
        .json(&shipping_rules())
        .send()
        .await
        .assert_status(200);

    let priced = |reply: &bestow_tests::Reply| -> Vec<(String, i64)> {
        reply.json["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["method_id"].as_str().unwrap().to_owned(), o["amount_minor"].as_i64().unwrap()))
            .collect()
    };
    let light = quote("DE", 800, 2_000).send().await;
    assert_eq!(priced(&light), [("eu-standard".to_owned(), 490), ("eu-express".to_owned(), 1490)]);
    let heavy_rich = quote("FR", 4_000, 12_000).send().await;
    assert_eq!(priced(&heavy_rich), [("eu-standard".to_owned(), 0), ("eu-express".to_owned(), 1990)]);
    assert_eq!(heavy_rich.json["options"][0]["free"], true);
    let too_heavy = quote("NL", 25_000, 100).send().await;
    assert_eq!(priced(&too_heavy), [("eu-express".to_owned(), 1490)]);
    assert_eq!(priced(&quote("US", 100, 100).send().await), [("na-flat".to_owned(), 2490)]);
    let nowhere = quote("JP", 100, 100).send().await;
    nowhere.assert_status(200);
    assert_eq!(nowhere.json["options"], json!([]));
}
