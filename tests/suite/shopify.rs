//! The Shopify connection end to end, against the local Shopify fake over real HTTP: the OAuth
//! install, verified webhooks, the catalogue mirror under throttling, stock, and the shop
//! orders of gift units with their fulfilment.

use bestow_tests::{Method, Reply, SHOPIFY_API_SECRET, Stack, eventually};
use serde_json::{Value, json};

use crate::orders::{gift_shop, now};

fn query_of(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn query_string(pairs: &[(String, String)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

fn resign(pairs: &mut Vec<(String, String)>) {
    pairs.retain(|(k, _)| k != "hmac");
    let hmac = bestow::integrations::shopify::query_signature(pairs, SHOPIFY_API_SECRET);
    pairs.push(("hmac".into(), hmac));
}

async fn callback(stack: &Stack, pairs: &[(String, String)]) -> Reply {
    stack.call(Method::GET, &format!("/shopify/callback?{}", query_string(pairs))).send().await
}

/// Starts an install as the vendor's owner; returns Shopify's redirect back (as the fake's
/// approving merchant sends it) as query pairs.
async fn approved_install(stack: &Stack, vendor: &str, owner: &str, shop: &str) -> Vec<(String, String)> {
    let started = stack
        .call(Method::POST, &format!("/vendors/{vendor}/shopify/install"))
        .token(owner)
        .json(&json!({ "shop": shop }))
        .send()
        .await;
    started.assert_status(200);
    let authorize = query_of(started.json["authorize_url"].as_str().unwrap());
    let param = |name: &str| authorize.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(param("client_id"), bestow_tests::SHOPIFY_API_KEY);
    let redirect = stack.shopify.authorize_redirect(shop, &param("redirect_uri"), &param("state"), &param("scope"));
    query_of(&redirect)
}

/// Connects a shop to a vendor and waits for the install's full sync; returns its job.
async fn connect(stack: &Stack, vendor: &str, owner: &str, shop: &str) -> Value {
    let pairs = approved_install(stack, vendor, owner, shop).await;
    let done = callback(stack, &pairs).await;
    if done.status != 200 {
        for line in bestow_tests::captured_logs().lines().filter(|l| l.contains("ERROR") || l.contains("error")) {
            eprintln!("LOG {}", &line[..line.len().min(600)]);
        }
    }
    done.assert_status(200);
    wait_job(stack, vendor, owner, done.json["sync_job_id"].as_str().unwrap()).await
}

async fn wait_job(stack: &Stack, vendor: &str, owner: &str, job_id: &str) -> Value {
    eventually(240, "the Shopify sync job", async || {
        let job = stack.call(Method::GET, &format!("/vendors/{vendor}/jobs/{job_id}")).token(owner).send().await.json;
        matches!(job["status"].as_str(), Some("succeeded" | "completed_with_errors" | "failed")).then_some(job)
    })
    .await
}

async fn connection(stack: &Stack, vendor: &str, owner: &str) -> Reply {
    stack.call(Method::GET, &format!("/vendors/{vendor}/shopify")).token(owner).send().await
}

async fn shopify_items(stack: &Stack) -> Vec<String> {
    stack
        .all_items()
        .await
        .iter()
        .filter_map(|i| i.get("PK").and_then(|v| v.as_s().ok()).cloned())
        .filter(|pk| pk.contains("SHOPIFY#SHOP") || pk.ends_with("CONFIG#SHOPIFY"))
        .collect()
}

async fn product(stack: &Stack, vendor: &str, owner: &str, id: &str) -> Value {
    stack.call(Method::GET, &format!("/vendors/{vendor}/products/{id}")).token(owner).send().await.json
}

async fn post_webhook(stack: &Stack, headers: &[(String, String)], body: &str) -> Reply {
    let mut call = stack.call(Method::POST, "/webhooks/shopify").raw(body.as_bytes().to_vec(), "application/json");
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-type") {
            call = call.header(name, value);
        }
    }
    call.send().await
}

/// Waits until the worker finished the job of a webhook delivery.
async fn wait_event_job(stack: &Stack, vendor: &str, webhook_id: &str) {
    let scope = bestow::tenancy::guard::job_scope(vendor, "test").unwrap();
    let key = bestow::store::keys::idempotency_key(&scope, "job:shopify_event", webhook_id);
    eventually(60, "the webhook's job", async || {
        let item = stack.app.table.get(&key).await.unwrap()?;
        (item.get("status").and_then(|s| s.as_s().ok()).map(String::as_str) != Some("in_progress")).then_some(())
    })
    .await;
}

/// Posts a webhook signed as Shopify signs it and waits until its job ran.
async fn deliver_signed(stack: &Stack, vendor: &str, shop: &str, topic: &str, payload: &Value) {
    let signed = stack.shopify.signed_webhook(shop, topic, payload);
    post_webhook(stack, &signed.headers, &signed.body).await.assert_status(200);
    wait_event_job(stack, vendor, signed.header("x-shopify-webhook-id").unwrap()).await;
}

#[tokio::test]
async fn an_install_refuses_tampered_replayed_or_foreign_redirects_and_stores_nothing_for_them() {
    let stack = Stack::start().await;
    let owner = stack.vendor("oauth").await;
    let shop = "oauth-gifts.myshopify.com";
    stack.shopify.add_shop(shop, "EUR");
    stack.shopify.seed_catalogue(shop, 3, 0, 0);

    for bad in ["oauth-gifts.example.com", "myshopify.com", "a.myshopify.com.evil.io", "https://x.myshopify.com/"] {
        let reply = stack
            .call(Method::POST, "/vendors/oauth/shopify/install")
            .token(&owner)
            .json(&json!({ "shop": bad }))
            .send()
            .await;
        reply.assert_status(422);
    }
    let manager = stack.staff("oauth", "manager");
    stack
        .call(Method::POST, "/vendors/oauth/shopify/install")
        .token(&manager)
        .json(&json!({ "shop": shop }))
        .send()
        .await
        .assert_status(403);

    let pairs = approved_install(&stack, "oauth", &owner, shop).await;
    // A tampered parameter breaks the hmac.
    let mut tampered = pairs.clone();
    for (k, v) in &mut tampered {
        if k == "code" {
            v.push('x');
        }
    }
    let reply = callback(&stack, &tampered).await;
    reply.assert_status(401);
    // A redirect without state, or with a state Bestow never issued, even when correctly signed.
    let mut stateless: Vec<_> = pairs.iter().filter(|(k, _)| k != "state").cloned().collect();
    resign(&mut stateless);
    callback(&stack, &stateless).await.assert_status(400);
    let mut forged = pairs.clone();
    forged.iter_mut().filter(|(k, _)| k == "state").for_each(|(_, v)| *v = "not-issued-by-bestow".into());
    resign(&mut forged);
    callback(&stack, &forged).await.assert_status(400);
    // A signed redirect naming a non-Shopify host is refused before any exchange.
    let mut foreign = pairs.clone();
    foreign.iter_mut().filter(|(k, _)| k == "shop").for_each(|(_, v)| *v = "evil.example.com".into());
    resign(&mut foreign);
    callback(&stack, &foreign).await.assert_status(400);
    assert_eq!(stack.shopify.token_exchanges(), 0, "no refused redirect reached the token endpoint");
    assert_eq!(connection(&stack, "oauth", &owner).await.json["status"], "not_connected");
    assert!(shopify_items(&stack).await.is_empty(), "nothing stored for refused redirects");

    // The real redirect connects the shop once; replaying it finds its state used.
    let done = callback(&stack, &pairs).await;
    done.assert_status(200);
    assert_eq!(done.json["shop"], shop);
    assert_eq!(done.json["webhook_topics"].as_array().unwrap().len(), 7, "{}", done.json);
    callback(&stack, &pairs).await.assert_status(400);
    assert_eq!(stack.shopify.token_exchanges(), 1);
    let subscriptions = stack.shopify.subscriptions(shop);
    assert_eq!(subscriptions.len(), 7);
    assert!(subscriptions.iter().all(|s| s["callbackUrl"] == format!("{}/webhooks/shopify", stack.base)));
    let job = wait_job(&stack, "oauth", &owner, done.json["sync_job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let view = connection(&stack, "oauth", &owner).await;
    view.assert_status(200);
    assert_eq!(view.json["status"], "connected");
    assert_eq!(view.json["sync"]["products"], 3);
    assert!(!view.text.contains("shpat_"), "the token never appears in a response");

    // Another vendor cannot take the same shop.
    let other = stack.vendor("oauth-other").await;
    let pairs = approved_install(&stack, "oauth-other", &other, shop).await;
    callback(&stack, &pairs).await.assert_status(409);
    assert_eq!(connection(&stack, "oauth-other", &other).await.json["status"], "not_connected");
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_never_replace_newer_data() {
    let stack = Stack::start().await;
    let owner = stack.vendor("hooks").await;
    let shop = "hooks-gifts.myshopify.com";
    stack.shopify.add_shop(shop, "EUR");
    let gids = stack.shopify.seed_catalogue(shop, 4, 0, 0);
    connect(&stack, "hooks", &owner, shop).await;
    let gid = &gids[0];
    let id = format!("shopify-{}", gid.rsplit('/').next().unwrap());
    let before = product(&stack, "hooks", &owner, &id).await;
    assert_eq!(before["external"]["id"], gid.as_str(), "{before}");
    // Listed with Bestow's own overrides, which no sync may touch.
    let storefront = stack
        .call(Method::POST, "/vendors/hooks/storefronts")
        .token(&owner)
        .json(&json!({"name": "Hooks", "slug": "hooks-shop", "currency": "EUR"}))
        .send()
        .await;
    storefront.assert_status(201);
    let listing = format!("/vendors/hooks/storefronts/{}/products/{id}", storefront.json["id"].as_str().unwrap());
    stack
        .call(Method::PUT, &listing)
        .token(&owner)
        .json(&json!({"sort_order": 1, "title": "Our Tee", "price_adjustment_percent": -10}))
        .send()
        .await
        .assert_status(201);

    // A real change in the shop: its webhook arrives by itself and updates the mirror.
    let changed = stack.shopify.update_product(shop, gid, |p| p.title = "Renamed in Shopify".into()).unwrap();
    eventually(60, "the update to be mirrored", async || {
        (product(&stack, "hooks", &owner, &id).await["title"] == "Renamed in Shopify").then_some(())
    })
    .await;

    let public = stack.call(Method::GET, &format!("/storefronts/hooks-shop/products/{id}")).send().await;
    public.assert_status(200);
    assert_eq!(public.json["title"], "Our Tee", "the override survives the sync: {}", public.json);
    let resync = stack.call(Method::POST, "/vendors/hooks/shopify/sync").token(&owner).send().await;
    wait_job(&stack, "hooks", &owner, resync.json["id"].as_str().unwrap()).await;
    let listings = listing.rsplit_once('/').unwrap().0.rsplit_once('/').unwrap().0.to_owned() + "/products";
    let listed = stack.call(Method::GET, &listings).token(&owner).send().await;
    let item =
        listed.json["items"].as_array().unwrap().iter().find(|l| l["product_id"] == id.as_str()).unwrap().clone();
    assert_eq!(item["override"]["price_adjustment_percent"], -10, "{item}");
    assert_eq!(item["override"]["title"], "Our Tee", "{item}");
    assert_eq!(item["card"]["title"], "Our Tee");

    let payload = json!({ "id": gid.rsplit('/').next().unwrap().parse::<u64>().unwrap(),
        "admin_graphql_api_id": gid, "title": "Renamed in Shopify", "updated_at": changed["updatedAt"] });
    let signed = stack.shopify.signed_webhook(shop, "products/update", &payload);
    let header = |name: &str| signed.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).unwrap().1.clone();
    // Tampered body, wrong secret, missing signature: 401 and nothing queued.
    let tampered = signed.body.replace("Renamed", "Hacked");
    post_webhook(&stack, &signed.headers, &tampered).await.assert_status(401);
    let mut wrong_secret = signed.headers.clone();
    for (k, v) in &mut wrong_secret {
        if k.eq_ignore_ascii_case("x-shopify-hmac-sha256") {
            *v = bestow::integrations::shopify::webhook_signature(signed.body.as_bytes(), "not-the-app-secret");
        }
    }
    post_webhook(&stack, &wrong_secret, &signed.body).await.assert_status(401);
    let unsigned: Vec<_> =
        signed.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("x-shopify-hmac-sha256")).cloned().collect();
    let reply = post_webhook(&stack, &unsigned, &signed.body).await;
    reply.assert_status(401);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    let no_shop: Vec<_> =
        signed.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("x-shopify-shop-domain")).cloned().collect();
    post_webhook(&stack, &no_shop, &signed.body).await.assert_status(400);

    // Valid, then the same delivery again: queued once.
    let first = post_webhook(&stack, &signed.headers, &signed.body).await;
    first.assert_status(200);
    assert_eq!(first.json["duplicate"], false, "{}", first.json);
    let again = post_webhook(&stack, &signed.headers, &signed.body).await;
    again.assert_status(200);
    assert_eq!(again.json["duplicate"], true);
    wait_event_job(&stack, "hooks", &header("x-shopify-webhook-id")).await;

    // An older update delivered late (a different delivery) changes nothing.
    let stale = json!({ "id": payload["id"], "admin_graphql_api_id": gid, "title": "Old title",
        "updated_at": "2020-01-01T00:00:00Z" });
    let stale = stack.shopify.signed_webhook(shop, "products/update", &stale);
    post_webhook(&stack, &stale.headers, &stale.body).await.assert_status(200);
    let stale_id = stale.header("x-shopify-webhook-id").unwrap().to_owned();
    wait_event_job(&stack, "hooks", &stale_id).await;
    let after = product(&stack, "hooks", &owner, &id).await;
    assert_eq!(after["title"], "Renamed in Shopify");
    assert_eq!(after["external"]["updated_at"], changed["updatedAt"]);

    // Stock comes from Shopify.
    let variant = &stack.shopify.product(shop, gid).unwrap()["variants"]["nodes"][0];
    stack.shopify.set_inventory(shop, variant["inventoryItem"]["id"].as_str().unwrap(), 42);
    let variant_id = format!("shopify-{}", variant["id"].as_str().unwrap().rsplit('/').next().unwrap());
    eventually(60, "the stock to be mirrored", async || {
        let variants =
            stack.call(Method::GET, &format!("/vendors/hooks/products/{id}/variants")).token(&owner).send().await.json;
        let v = variants["items"].as_array()?.iter().find(|v| v["id"] == variant_id.as_str())?.clone();
        (v["stock_quantity"] == 42).then_some(())
    })
    .await;
    // The mirror is Shopify's: the catalogue API refuses to change it.
    stack
        .call(Method::PATCH, &format!("/vendors/hooks/products/{id}"))
        .token(&owner)
        .header("if-match", "\"v1\"")
        .json(&json!({ "title": "Local edit" }))
        .send()
        .await
        .assert_status(409);

    // Deleted upstream: archived, never duplicated.
    stack.shopify.delete_product(shop, gid);
    eventually(60, "the product to be archived", async || {
        (product(&stack, "hooks", &owner, &id).await["status"] == "archived").then_some(())
    })
    .await;
    let mirrored = stack
        .all_items()
        .await
        .iter()
        .filter(|i| i.get("entity").and_then(|v| v.as_s().ok()).is_some_and(|e| e == "product"))
        .count();
    assert_eq!(mirrored, 4, "one product per Shopify product, none duplicated");
}

#[tokio::test]
async fn a_full_sync_of_1000_products_under_throttling_and_a_second_sync_that_writes_nothing() {
    let stack = Stack::start().await;
    let owner = stack.vendor("bigshop").await;
    let shop = "big-gifts.myshopify.com";
    stack.shopify.add_shop(shop, "EUR");
    // 1,000 products; every 100th has 12 × 10 = 120 variants (more than a page holds).
    stack.shopify.seed_catalogue(shop, 1000, 100, 120);
    let expected_variants: usize =
        stack.shopify.products(shop).iter().map(|p| p["variants"]["nodes"].as_array().unwrap().len()).sum();
    // Shopify's 1,000-point bucket, refilling fast enough for a test: after each page the
    // next one (898 points requested) must wait a moment for it.
    stack.shopify.set_throttle(Some(shop), 1_000.0, 2_000.0);

    let first = connect(&stack, "bigshop", &owner, shop).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let result = &first["result"];
    assert_eq!(result["stats"]["products"], 1000, "{result}");
    assert_eq!(result["stats"]["variants"], expected_variants as u64);
    assert_eq!(result["stats"]["products_written"], 1000);
    assert_eq!(result["stats"]["variants_written"], expected_variants as u64);
    assert!(result["shopify"]["paced"].as_u64().unwrap() >= 1, "the client waited for the bucket: {result}");
    let requests_first = stack.shopify.requests().len();
    let snapshot = catalogue(&stack).await;
    assert_eq!(snapshot.len(), 1000 + expected_variants);

    // The second sync meets a 429 with Retry-After and a 502, and retries both.
    stack.shopify.fail_next_with_retry_after(1, 429, 0.2);
    stack.shopify.fail_next(1, 502);
    let started = stack.call(Method::POST, "/vendors/bigshop/shopify/sync").token(&owner).send().await;
    started.assert_status(202);
    let second = wait_job(&stack, "bigshop", &owner, started.json["id"].as_str().unwrap()).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let result = &second["result"];
    assert_eq!(result["stats"]["products_written"], 0, "{result}");
    assert_eq!(result["stats"]["variants_written"], 0);
    assert_eq!(result["stats"]["unchanged"], 1000);
    assert!(result["shopify"]["throttled"].as_u64().unwrap() >= 1, "{result}");
    assert!(result["shopify"]["retried_errors"].as_u64().unwrap() >= 1, "{result}");
    assert_eq!(catalogue(&stack).await, snapshot, "the second sync leaves the catalogue as it was, versions too");
    let view = connection(&stack, "bigshop", &owner).await.json;
    assert_eq!(view["sync"]["products_written"], 0);
    assert_eq!(view["sync"]["variants"], expected_variants as u64);
    eprintln!(
        "FIGURES shopify sync: first {} GraphQL requests, second {}; first run {}; second run {}",
        requests_first,
        stack.shopify.requests().len() - requests_first,
        first["result"]["shopify"],
        result["shopify"]
    );
}

/// Every product and variant item as (key, version, status): a sync that writes anything
/// changes a version.
async fn catalogue(stack: &Stack) -> std::collections::BTreeMap<String, String> {
    stack
        .all_items()
        .await
        .iter()
        .filter(|i| i.get("entity").and_then(|v| v.as_s().ok()).is_some_and(|e| e == "product" || e == "variant"))
        .map(|i| {
            let s = |n: &str| i.get(n).and_then(|v| v.as_s().or_else(|_| v.as_n()).ok()).cloned().unwrap_or_default();
            (format!("{}|{}", s("PK"), s("SK")), format!("{}|{}|{}", s("version"), s("status"), s("stock_quantity")))
        })
        .collect()
}

#[tokio::test]
async fn a_gift_of_a_synced_variant_becomes_one_shop_order_that_ships_it_and_never_oversells() {
    let stack = Stack::start().await;
    let gifts = gift_shop(&stack, "mirror").await;
    let shop = "mirror-gifts.myshopify.com";
    stack.shopify.add_shop(shop, "EUR");
    let gid = stack
        .shopify
        .add_product(shop, bestow_infra::fakes::shopify::Product::new("Shopify Mug", &[("Colour", &["Red", "Blue"])]));
    connect(&stack, "mirror", &gifts.owner, shop).await;
    let product_id = format!("shopify-{}", gid.rsplit('/').next().unwrap());
    let upstream = stack.shopify.product(shop, &gid).unwrap();
    let red = &upstream["variants"]["nodes"][0];
    let red_id = format!("shopify-{}", red["id"].as_str().unwrap().rsplit('/').next().unwrap());
    // Two in stock in Shopify.
    stack.shopify.set_inventory(shop, red["inventoryItem"]["id"].as_str().unwrap(), 2);
    let variants_path = format!("/vendors/mirror/products/{product_id}/variants");
    eventually(60, "the stock to be mirrored", async || {
        let variants = stack.call(Method::GET, &variants_path).token(&gifts.owner).send().await.json;
        (variants["items"][0]["stock_quantity"] == 2).then_some(())
    })
    .await;
    stack
        .call(Method::PUT, &format!("/vendors/mirror/storefronts/{}/products/{product_id}", gifts.storefront))
        .token(&gifts.owner)
        .json(&json!({ "sort_order": 2 }))
        .send()
        .await
        .assert_status(201);
    let address = json!({"line1": "Main St 1", "city": "Berlin", "postal_code": "10115", "country": "DE"});
    let recipients: Vec<Value> = (0..3)
        .map(|i| json!({"name": format!("Rec {i}"), "email": format!("rec{i}@mirror.example"), "shipping_method_id": "std"}))
        .collect();
    // Three recipients of a variant Shopify has two of: the checkout refuses the oversell.
    let refused = gifts
        .checkout(
            &stack,
            json!({"items": [{"product_id": product_id, "variant_id": red_id, "quantity": 1}],
                "sender_name": "Acme", "recipients": recipients}),
        )
        .await;
    assert!(matches!(refused.status, 409 | 422), "{}", refused.text);
    let reply = gifts
        .checkout(
            &stack,
            json!({"items": [{"product_id": product_id, "variant_id": red_id, "quantity": 1}],
                "sender_name": "Acme", "recipients": recipients[..2]}),
        )
        .await;
    reply.assert_status(201);
    let order = reply.json["order"].clone();
    let order_id = order["id"].as_str().unwrap().to_owned();
    let event = stack.stripe.succeed_payment(order["payment_intent_id"].as_str().unwrap()).unwrap();
    gifts.deliver(&stack, event.to_string().as_bytes(), &gifts.webhook_secret, now()).await.assert_status(200);
    gifts.wait_split(&stack, &order_id).await;
    let units_path = format!("/vendors/mirror/orders/{order_id}/units");
    let units = stack.call(Method::GET, &units_path).token(&gifts.owner).send().await.json["items"].clone();
    let codes: Vec<String> = units.as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap().to_owned()).collect();

    // Meanwhile the shop sold one elsewhere: one left.
    stack.shopify.set_inventory(shop, red["inventoryItem"]["id"].as_str().unwrap(), 1);
    eventually(60, "the stock to be mirrored", async || {
        let variants = stack.call(Method::GET, &variants_path).token(&gifts.owner).send().await.json;
        (variants["items"][0]["stock_quantity"] == 1).then_some(())
    })
    .await;
    let accepted =
        stack.call(Method::PUT, &format!("/gifts/{}", codes[0])).json(&json!({ "address": address })).send().await;
    accepted.assert_status(200);
    // The second recipient would oversell: refused, and nothing of the acceptance written.
    let oversold =
        stack.call(Method::PUT, &format!("/gifts/{}", codes[1])).json(&json!({ "address": address })).send().await;
    oversold.assert_status(422);
    assert!(oversold.text.contains("out of stock"), "{}", oversold.text);
    let second = stack.call(Method::GET, &format!("/gifts/{}", codes[1])).send().await;
    assert_ne!(second.json["gift"], "accepted");

    // The accepted gift becomes exactly one order in the shop, tagged with its unit.
    let unit_id = units[0]["id"].as_str().unwrap().to_owned();
    let tag = format!("bestow-unit-{unit_id}");
    let shop_order = eventually(60, "the shop order", async || {
        stack
            .shopify
            .orders(shop)
            .into_iter()
            .find(|o| o["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == tag.as_str())))
    })
    .await;
    // The job again (a redelivery after a lost answer, a second queueing): still one order.
    let scope = bestow::tenancy::guard::job_scope("mirror", "shopify_order").unwrap();
    let unit = eventually(30, "the unit to record its shop order", async || {
        let units = stack.call(Method::GET, &units_path).token(&gifts.owner).send().await.json;
        let unit = units["items"][0].clone();
        unit["external_order"]["id"].as_str().is_some_and(|id| !id.is_empty()).then_some(unit)
    })
    .await;
    let job = bestow::shopify::jobs::ShopifyOrder { order_id: order_id.clone(), number: 1, unit_version: 99 };
    for _ in 0..2 {
        let outcome = bestow::shopify::service::create_shop_order(&stack.app, &scope, &job).await.unwrap();
        assert_eq!(outcome["outcome"], "already ordered", "{outcome}");
    }
    // A try that died after Shopify created the order and before the unit recorded it: the
    // retry finds the order by its tag instead of creating another.
    let repo = bestow::orders::repo::OrderRepo::new(&stack.app.table, &scope);
    let stored = repo.unit(&order_id, 1).await.unwrap().unwrap();
    let mut forgotten = stored.value.clone();
    forgotten.external_order = Some(bestow::fulfillment::model::ExternalOrder::pending("shopify"));
    stack.app.table.transact(vec![repo.save_unit(&forgotten, stored.version).unwrap()]).await.unwrap();
    let outcome = bestow::shopify::service::create_shop_order(&stack.app, &scope, &job).await.unwrap();
    assert_eq!(outcome["outcome"], "ordered", "{outcome}");
    assert_eq!(stack.shopify.orders(shop).len(), 1, "still one order in the shop");
    assert_eq!(unit["external_order"]["id"], shop_order["id"]);
    // Once the shop has it, the gift can no longer be changed.
    let view = stack.call(Method::GET, &format!("/gifts/{}", codes[0])).send().await;
    assert_eq!(view.json["changeable"], false, "{}", view.json);

    // The shop fulfils it: the unit ships with the shop's tracking.
    stack.shopify.fulfil_order(shop, shop_order["id"].as_str().unwrap(), "DHL", "JD014600006281");
    let shipped = eventually(60, "the unit to ship", async || {
        let units = stack.call(Method::GET, &units_path).token(&gifts.owner).send().await.json;
        let unit = units["items"][0].clone();
        (unit["status"] == "shipped").then_some(unit)
    })
    .await;
    assert_eq!(shipped["carrier"], "DHL");
    assert_eq!(shipped["tracking_number"], "JD014600006281");

    // A recipient the buyer addressed is settled at the split: their shop order follows the
    // gift email, without an acceptance.
    stack.shopify.set_inventory(shop, red["inventoryItem"]["id"].as_str().unwrap(), 5);
    eventually(60, "the stock to be mirrored", async || {
        let variants = stack.call(Method::GET, &variants_path).token(&gifts.owner).send().await.json;
        (variants["items"][0]["stock_quantity"] == 5).then_some(())
    })
    .await;
    let addressed = json!({"name": "Ada Addressed", "email": "ada@mirror.example", "shipping_method_id": "std",
        "address": {"line1": "Side St 2", "city": "Paris", "postal_code": "75001", "country": "FR"}});
    let reply = gifts
        .checkout(
            &stack,
            json!({"items": [{"product_id": product_id, "variant_id": red_id, "quantity": 1}],
                "sender_name": "Acme", "recipients": [addressed]}),
        )
        .await;
    reply.assert_status(201);
    let second_order = reply.json["order"].clone();
    let event = stack.stripe.succeed_payment(second_order["payment_intent_id"].as_str().unwrap()).unwrap();
    gifts.deliver(&stack, event.to_string().as_bytes(), &gifts.webhook_secret, now()).await.assert_status(200);
    let second_unit = format!("bestow-unit-{}-00001", second_order["id"].as_str().unwrap());
    eventually(120, "the addressed unit's shop order", async || {
        stack
            .shopify
            .orders(shop)
            .iter()
            .any(|o| o["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == second_unit.as_str())))
            .then_some(())
    })
    .await;
    assert_eq!(stack.shopify.orders(shop).len(), 2);

    // Privacy: a data request exports what Bestow holds on the order's recipient; a redact
    // erases it.
    let order_number: u64 = shop_order["id"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let request = stack.shopify.customers_data_request_payload(shop, 7, "rec0@mirror.example", &[order_number]);
    deliver_signed(&stack, "mirror", shop, "customers/data_request", &request).await;
    let bucket = stack.app.config.documents_bucket.clone().unwrap();
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.sdk).force_path_style(true).build());
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("vendors/mirror/privacy/shopify/").send().await.unwrap();
    let key = listed.contents()[0].key().unwrap().to_owned();
    let export = s3.get_object().bucket(&bucket).key(&key).send().await.unwrap().body.collect().await.unwrap();
    let export: Value = serde_json::from_slice(&export.into_bytes()).unwrap();
    assert_eq!(export["records"][0]["recipient_email"], "rec0@mirror.example", "{export}");

    let redact = stack.shopify.customers_redact_payload(shop, 7, "rec0@mirror.example", &[order_number]);
    deliver_signed(&stack, "mirror", shop, "customers/redact", &redact).await;
    let units = stack.call(Method::GET, &units_path).token(&gifts.owner).send().await;
    assert!(!units.text.contains("rec0@mirror.example") && !units.text.contains("Main St 1"), "{}", units.text);
}

#[tokio::test]
async fn an_uninstall_removes_the_token_and_stops_syncing_but_keeps_the_catalogue() {
    let stack = Stack::start().await;
    let owner = stack.vendor("leaver").await;
    let shop = "leaver-gifts.myshopify.com";
    stack.shopify.add_shop(shop, "EUR");
    stack.shopify.seed_catalogue(shop, 5, 0, 0);
    connect(&stack, "leaver", &owner, shop).await;
    let secret = format!("{}/vendors/leaver/shopify", stack.app.config.secrets_prefix);
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.sdk);
    assert!(secrets.get_secret_value().secret_id(&secret).send().await.is_ok());

    // A signed app/uninstalled body replayed while the app is installed (or delivered late,
    // after a re-install): the token still works, so nothing is disconnected.
    let replay = json!({ "id": 1, "name": "Leaver", "domain": shop, "myshopify_domain": shop });
    deliver_signed(&stack, "leaver", shop, "app/uninstalled", &replay).await;
    assert_eq!(connection(&stack, "leaver", &owner).await.json["status"], "connected");
    assert!(secrets.get_secret_value().secret_id(&secret).send().await.is_ok());
    // The same body under another shop's header is refused: erasing topics must name the
    // header's shop in their signed body.
    let signed = stack.shopify.signed_webhook(shop, "app/uninstalled", &replay);
    let mut other_shop = signed.headers.clone();
    for (k, v) in &mut other_shop {
        if k.eq_ignore_ascii_case("x-shopify-shop-domain") {
            *v = "victim-gifts.myshopify.com".into();
        }
        if k.eq_ignore_ascii_case("x-shopify-webhook-id") {
            *v = "another-delivery".into();
        }
    }
    post_webhook(&stack, &other_shop, &signed.body).await.assert_status(400);

    stack.shopify.uninstall(shop);
    eventually(60, "the uninstall to take effect", async || {
        (connection(&stack, "leaver", &owner).await.json["status"] == "uninstalled").then_some(())
    })
    .await;
    assert!(secrets.get_secret_value().secret_id(&secret).send().await.is_err(), "the token is deleted");
    stack.call(Method::POST, "/vendors/leaver/shopify/sync").token(&owner).send().await.assert_status(409);
    let products = stack.call(Method::GET, "/vendors/leaver/products").token(&owner).send().await;
    assert_eq!(products.json["items"].as_array().unwrap().len(), 5, "the mirrored catalogue stays");

    // 48 hours later Shopify asks for the shop's data to be erased.
    let payload = stack.shopify.shop_redact_payload(shop);
    deliver_signed(&stack, "leaver", shop, "shop/redact", &payload).await;
    assert_eq!(connection(&stack, "leaver", &owner).await.json["status"], "not_connected");
    assert!(shopify_items(&stack).await.is_empty(), "the connection and the shop lookup are gone");
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_before_use_and_the_new_one_stored() {
    let stack = Stack::start().await;
    let owner = stack.vendor("fresh").await;
    let shop = "fresh-gifts.myshopify.com";
    stack.shopify.add_shop(shop, "EUR");
    stack.shopify.seed_catalogue(shop, 3, 0, 0);
    // Tokens that expire within the refresh margin: every use refreshes first. (Long enough
    // for a job to use its fresh token on a loaded two-core CI machine.)
    stack.shopify.set_token_lifetime(std::time::Duration::from_secs(10));
    let first = connect(&stack, "fresh", &owner, shop).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let after_install = stack.shopify.token_refreshes();
    assert!(after_install >= 1, "the sync refreshed the install's token first");
    tokio::time::sleep(std::time::Duration::from_millis(10_500)).await;
    // The install's token has expired; the stored refresh token still works.
    let started = stack.call(Method::POST, "/vendors/fresh/shopify/sync").token(&owner).send().await;
    let second = wait_job(&stack, "fresh", &owner, started.json["id"].as_str().unwrap()).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert!(stack.shopify.token_refreshes() > after_install);
    assert_eq!(stack.shopify.token_exchanges(), 1, "one authorization code, never asked again");
    let secret = format!("{}/vendors/fresh/shopify", stack.app.config.secrets_prefix);
    let stored =
        aws_sdk_secretsmanager::Client::new(&stack.sdk).get_secret_value().secret_id(&secret).send().await.unwrap();
    let stored: Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    assert!(stored["refresh_token"].as_str().is_some_and(|t| t.starts_with("shprt_")), "rotated refresh token stored");
    assert!(stored["expires_at"].as_i64().is_some());
}
