//! Storefronts, listings with overrides and the public catalogue, through the API.

use bestow_tests::{Method, Reply, Stack};
use serde_json::{Value, json};

async fn post(stack: &Stack, token: &str, path: &str, body: Value) -> Reply {
    stack.call(Method::POST, path).token(token).json(&body).send().await
}

async fn product(stack: &Stack, vendor: &str, token: &str, body: Value) -> Value {
    let reply = post(stack, token, &format!("/vendors/{vendor}/products"), body).await;
    reply.assert_status(201);
    reply.json
}

async fn variants(stack: &Stack, vendor: &str, token: &str, product: &str) -> Vec<Value> {
    let reply =
        stack.call(Method::GET, &format!("/vendors/{vendor}/products/{product}/variants")).token(token).send().await;
    reply.assert_status(200);
    reply.json["items"].as_array().unwrap().clone()
}

async fn list_on(stack: &Stack, token: &str, vendor: &str, storefront: &str, product: &str, body: Value) -> Reply {
    stack
        .call(Method::PUT, &format!("/vendors/{vendor}/storefronts/{storefront}/products/{product}"))
        .token(token)
        .json(&body)
        .send()
        .await
}

/// The public list, anonymously.
async fn public_list(stack: &Stack, storefront: &str) -> Reply {
    stack.call(Method::GET, &format!("/storefronts/{storefront}/products")).send().await
}

fn ids(list: &Reply) -> Vec<String> {
    list.json["items"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn storefronts_show_listed_products_with_their_overrides() {
    let stack = Stack::start().await;
    let owner = stack.vendor("shop-a").await;
    let sf = post(
        &stack,
        &owner,
        "/vendors/shop-a/storefronts",
        json!({"name": "Berlin", "slug": "berlin-gifts", "host": "gifts.berlin.example",
               "branding": {"primary_color": "#114477", "tagline": "Gifts"}}),
    )
    .await;
    sf.assert_status(201);
    assert_eq!(sf.json["currency"], "EUR");
    let sf_id = sf.json["id"].as_str().unwrap().to_owned();

    let colours = json!([{"name": "Colour", "values": [{"value": "Red"}, {"value": "Blue"}, {"value": "Green"}]}]);
    let tee = product(
        &stack,
        "shop-a",
        &owner,
        json!({"title": "Tee", "status": "active", "options": colours,
        "variant_defaults": {"price_minor": 2000}}),
    )
    .await;
    let mug = product(
        &stack,
        "shop-a",
        &owner,
        json!({"title": "Mug", "status": "active", "variant_defaults": {"price_minor": 999}}),
    )
    .await;
    let draft =
        product(&stack, "shop-a", &owner, json!({"title": "Draft", "variant_defaults": {"price_minor": 1}})).await;
    let later = product(&stack, "shop-a", &owner, json!({"title": "Later", "status": "active"})).await;
    let tee_id = tee["id"].as_str().unwrap();
    let tee_variants = variants(&stack, "shop-a", &owner, tee_id).await;
    let (red, blue, green) = (&tee_variants[0]["id"], &tee_variants[1]["id"], &tee_variants[2]["id"]);

    // Tee: 10 % off, Blue at a fixed price, Green hidden, first in the sort order.
    let listed = list_on(
        &stack,
        &owner,
        "shop-a",
        &sf_id,
        tee_id,
        json!({
        "title": "Winter Tee", "price_adjustment_percent": -10, "variant_prices": {blue.as_str().unwrap(): 1500},
        "visible_variants": [red, blue], "sort_order": 1}),
    )
    .await;
    listed.assert_status(201);
    assert_eq!(listed.json["card"]["price_min_minor"], 1500);
    assert_eq!(listed.json["card"]["price_max_minor"], 1800);
    assert_eq!(listed.json["listed"], true);
    for (p, order) in [(&mug, 2), (&draft, 3)] {
        list_on(&stack, &owner, "shop-a", &sf_id, p["id"].as_str().unwrap(), json!({"sort_order": order}))
            .await
            .assert_status(201);
    }
    list_on(
        &stack,
        &owner,
        "shop-a",
        &sf_id,
        later["id"].as_str().unwrap(),
        json!({"available_from": "2099-01-01T00:00:00Z"}),
    )
    .await
    .assert_status(201);
    // Listing again without If-Match is 428; showing a variant that does not exist is 422.
    list_on(&stack, &owner, "shop-a", &sf_id, tee_id, json!({})).await.assert_problem(428);
    let bad = stack
        .call(Method::PUT, &format!("/vendors/shop-a/storefronts/{sf_id}/products/{tee_id}"))
        .token(&owner)
        .header("if-match", &listed.etag())
        .json(&json!({"visible_variants": ["nope"], "price_adjustment_percent": -101}))
        .send()
        .await;
    bad.assert_problem(422);
    assert_eq!(bad.json["errors"].as_array().unwrap().len(), 2, "{}", bad.text);

    // Anonymous visitors see the active, available products in sort order, by slug or host.
    let list = public_list(&stack, "berlin-gifts").await;
    list.assert_status(200);
    assert_eq!(ids(&list), [tee_id, mug["id"].as_str().unwrap()], "{}", list.text);
    assert_eq!(list.json["storefront"]["branding"]["primary_color"], "#114477");
    assert_eq!(list.json["items"][0]["title"], "Winter Tee");
    assert_eq!(list.json["items"][0]["in_stock"], false, "no stock yet");
    assert_eq!(ids(&public_list(&stack, "gifts.berlin.example").await), ids(&list));

    let page = stack.call(Method::GET, &format!("/storefronts/berlin-gifts/products/{tee_id}")).send().await;
    page.assert_status(200);
    let shown: Vec<(&str, i64, &str)> = page.json["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["title"].as_str().unwrap(), v["price_minor"].as_i64().unwrap(), v["stock_state"].as_str().unwrap()))
        .collect();
    assert_eq!(shown, [("Red", 1800, "out_of_stock"), ("Blue", 1500, "out_of_stock")]);
    assert_eq!(page.json["variants"][0]["compare_at_price_minor"], 2000, "the base price shows as compare-at");
    assert_eq!(page.json["options"][0]["values"], json!(["Red", "Blue"]), "Green is hidden");
    assert!(!page.text.contains(green.as_str().unwrap()));
    for hidden in [&draft, &later] {
        let path = format!("/storefronts/berlin-gifts/products/{}", hidden["id"].as_str().unwrap());
        stack.call(Method::GET, &path).send().await.assert_problem(404);
    }

    // Stock arrives: the card is rebuilt after the variant write.
    stack
        .call(Method::PATCH, &format!("/vendors/shop-a/products/{tee_id}/variants/{}", red.as_str().unwrap()))
        .token(&owner)
        .header("if-match", "\"v1\"")
        .json(&json!({"stock_quantity": 5}))
        .send()
        .await
        .assert_status(200);
    assert_eq!(public_list(&stack, "berlin-gifts").await.json["items"][0]["in_stock"], true);
    // A write of the product's own fields patches the card's product part and keeps what came
    // from its variants (the variants are not read again).
    let tee_path = format!("/vendors/shop-a/products/{tee_id}");
    let current = stack.call(Method::GET, &tee_path).token(&owner).send().await;
    stack
        .call(Method::PATCH, &tee_path)
        .token(&owner)
        .header("if-match", &current.etag())
        .json(&json!({"description": "Soft cotton", "tags": ["winter"]}))
        .send()
        .await
        .assert_status(200);
    let list = public_list(&stack, "berlin-gifts").await;
    let card = &list.json["items"][0];
    assert_eq!(
        (&card["title"], &card["description"], &card["tags"], &card["in_stock"], &card["price_min_minor"]),
        (&json!("Winter Tee"), &json!("Soft cotton"), &json!(["winter"]), &json!(true), &json!(1500)),
        "{}",
        list.text
    );
    // A late refresh from an older copy of the product never brings that copy back: the card
    // is saved only while the product is the version copied, else rebuilt from the store.
    let scope = bestow::tenancy::guard::job_scope("shop-a", "test").unwrap();
    let stored = bestow::catalog::repo::CatalogRepo::new(&stack.app.table, &scope).product(tee_id).await.unwrap();
    let mut older = stored.expect("the tee");
    older.value.description = "An older copy".into();
    older.version -= 1;
    bestow::storefronts::service::refresh_listings_of_product(&stack.app, &scope, &older).await;
    assert_eq!(public_list(&stack, "berlin-gifts").await.json["items"][0]["description"], "Soft cotton");
    // Archiving the product takes it off the list.
    let mug_path = format!("/vendors/shop-a/products/{}", mug["id"].as_str().unwrap());
    let current = stack.call(Method::GET, &mug_path).token(&owner).send().await;
    stack
        .call(Method::PATCH, &mug_path)
        .token(&owner)
        .header("if-match", &current.etag())
        .json(&json!({"status": "archived"}))
        .send()
        .await
        .assert_status(200);
    assert_eq!(ids(&public_list(&stack, "berlin-gifts").await), [tee_id]);
    // Delisting, and disabling the storefront.
    stack
        .call(Method::DELETE, &format!("/vendors/shop-a/storefronts/{sf_id}/products/{tee_id}"))
        .token(&owner)
        .send()
        .await
        .assert_status(204);
    assert!(ids(&public_list(&stack, "berlin-gifts").await).is_empty());
    let staff_view =
        stack.call(Method::GET, &format!("/vendors/shop-a/storefronts/{sf_id}/products")).token(&owner).send().await;
    assert_eq!(staff_view.json["items"].as_array().unwrap().len(), 3, "staff see unlisted listings too");
    stack
        .call(Method::PATCH, &format!("/vendors/shop-a/storefronts/{sf_id}"))
        .token(&owner)
        .header("if-match", "\"v1\"")
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .assert_status(200);
    public_list(&stack, "berlin-gifts").await.assert_problem(404);
    public_list(&stack, "no-such-shop").await.assert_problem(404);
    assert!(stack.key_violations().await.is_empty());
}

#[tokio::test]
async fn a_storefront_never_shows_another_vendors_products() {
    let stack = Stack::start().await;
    let a = stack.vendor("iso-shop-a").await;
    let b = stack.vendor("iso-shop-b").await;
    let sf_a = post(&stack, &a, "/vendors/iso-shop-a/storefronts", json!({"name": "A", "slug": "shop-of-a"})).await;
    sf_a.assert_status(201);
    let sf_a = sf_a.json["id"].as_str().unwrap().to_owned();
    let sf_b = post(&stack, &b, "/vendors/iso-shop-b/storefronts", json!({"name": "B", "slug": "shop-of-b"})).await;
    let sf_b = sf_b.json["id"].as_str().unwrap().to_owned();
    let pa = product(&stack, "iso-shop-a", &a, json!({"title": "A thing", "status": "active"})).await;
    let pb = product(&stack, "iso-shop-b", &b, json!({"title": "B thing", "status": "active"})).await;
    let (pa, pb) = (pa["id"].as_str().unwrap(), pb["id"].as_str().unwrap());
    list_on(&stack, &a, "iso-shop-a", &sf_a, pa, json!({})).await.assert_status(201);
    list_on(&stack, &b, "iso-shop-b", &sf_b, pb, json!({})).await.assert_status(201);

    // Slugs are unique across vendors.
    post(&stack, &b, "/vendors/iso-shop-b/storefronts", json!({"name": "Copy", "slug": "shop-of-a"}))
        .await
        .assert_problem(409);
    // A's storefront lists only A's product; B's product id in A's storefront path is 404.
    assert_eq!(ids(&public_list(&stack, "shop-of-a").await), [pa]);
    stack.call(Method::GET, &format!("/storefronts/shop-of-a/products/{pb}")).send().await.assert_problem(404);
    stack.call(Method::GET, &format!("/storefronts/shop-of-b/products/{pb}")).send().await.assert_status(200);
    // A's staff cannot list B's product on A's storefront, nor touch B's storefront.
    list_on(&stack, &a, "iso-shop-a", &sf_a, pb, json!({})).await.assert_problem(404);
    list_on(&stack, &a, "iso-shop-b", &sf_b, pa, json!({})).await.assert_problem(404);
    list_on(&stack, &a, "iso-shop-a", &sf_b, pa, json!({})).await.assert_problem(404);
    assert_eq!(ids(&public_list(&stack, "shop-of-b").await), [pb]);
    // A forged cursor pointing into B's listings is refused.
    let forged = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!(
            r#"{{"PK":"V#iso-shop-b#SF#{sf_b}","SK":"PRODUCT#{pb}","GSI1PK":"V#iso-shop-b#SF#{sf_b}#LISTED","GSI1SK":"0000000000#{pb}"}}"#
        ),
    );
    stack
        .call(Method::GET, &format!("/storefronts/shop-of-a/products?cursor={forged}"))
        .send()
        .await
        .assert_problem(400);
    assert!(stack.key_violations().await.is_empty());
}

#[tokio::test]
async fn storefront_input_is_checked_before_anything_is_written() {
    let stack = Stack::start().await;
    let owner = stack.vendor("sf-check").await;
    let bad = post(
        &stack,
        &owner,
        "/vendors/sf-check/storefronts",
        json!({"name": " ", "slug": "-x", "host": "nohost", "branding": {"primary_color": "blue", "logo_url": "http://x"}, "currency": "XXX"}),
    )
    .await;
    bad.assert_problem(422);
    let pointers: Vec<_> =
        bad.json["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, ["/name", "/slug", "/host", "/branding/primary_color", "/branding/logo_url", "/currency"]);
    let list = stack.call(Method::GET, "/vendors/sf-check/storefronts").token(&owner).send().await;
    assert!(list.json["items"].as_array().unwrap().is_empty());
    // A product in another currency cannot be listed.
    let sf = post(
        &stack,
        &owner,
        "/vendors/sf-check/storefronts",
        json!({"name": "UK", "slug": "uk-shop", "currency": "GBP"}),
    )
    .await;
    let p = product(&stack, "sf-check", &owner, json!({"title": "Euro thing", "status": "active"})).await;
    let reply =
        list_on(&stack, &owner, "sf-check", sf.json["id"].as_str().unwrap(), p["id"].as_str().unwrap(), json!({}))
            .await;
    assert!(reply.assert_problem(422).ends_with("/validation-failed"));
    // Staff routes need a token; public ones do not.
    stack.call(Method::GET, "/vendors/sf-check/storefronts").send().await.assert_status(401);
    public_list(&stack, "uk-shop").await.assert_status(200);
}
