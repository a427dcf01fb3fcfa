//! Gift orders end to end: checkout against the local Stripe fake, signed webhooks, the
//! exactly-once split into units and codes, and the gift emails with their QR codes.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use bestow_tests::{Method, Reply, Stack, eventually, mail_for, smtp_sink_settings};
use serde_json::{Value, json};

/// A vendor ready to sell gifts: shipping rules with tax, SMTP, Stripe, one listed product.
pub struct GiftShop {
    pub vendor: String,
    pub owner: String,
    pub buyer: String,
    /// A fulfillment-role member of the vendor's staff.
    pub staff: String,
    pub webhook_secret: String,
    pub storefront: String,
    pub product: String,
    /// Variants by size, cheapest first: S 2000, M 2500, L 3000 (minor units).
    pub variants: Vec<String>,
}

pub async fn gift_shop(stack: &Stack, vendor: &str) -> GiftShop {
    let owner = stack.vendor(vendor).await;
    let put = |path: &str, body: Value| {
        stack.call(Method::PUT, &format!("/vendors/{vendor}{path}")).token(&owner).json(&body)
    };
    put(
        "/shipping",
        json!({"currency": "EUR", "tax_rate_basis_points": 1900,
            "zones": [{"id": "eu", "name": "EU", "countries": ["DE", "FR", "NL"]}],
            "methods": [{"id": "std", "name": "Standard", "zone_id": "eu", "rate": {"type": "flat", "amount_minor": 495}}]}),
    )
    .send()
    .await
    .assert_status(200);
    put("/smtp", smtp_sink_settings(vendor, "mail-password")).send().await.assert_status(200);
    let webhook_secret = format!("whsec_{}0123456789abcdef", vendor.replace('-', ""));
    put(
        "/stripe",
        json!({"publishable_key": "pk_test_abcdefgh1234", "secret_key": "sk_test_abcdefgh1234", "webhook_secret": webhook_secret}),
    )
    .send()
    .await
    .assert_status(200);
    let product = stack
        .call(Method::POST, &format!("/vendors/{vendor}/products"))
        .token(&owner)
        .json(&json!({"title": "Gift Box", "status": "active",
            "options": [{"name": "Size", "values": [{"value": "S"}, {"value": "M"}, {"value": "L"}]}],
            "variant_defaults": {"price_minor": 2000, "weight_grams": 500, "inventory_policy": "continue"}}))
        .send()
        .await;
    product.assert_status(201);
    let product = product.json["id"].as_str().unwrap().to_owned();
    let listed =
        stack.call(Method::GET, &format!("/vendors/{vendor}/products/{product}/variants")).token(&owner).send().await;
    let mut variants = Vec::new();
    for (i, v) in listed.json["items"].as_array().unwrap().iter().enumerate() {
        let path = format!("/vendors/{vendor}/products/{product}/variants/{}", v["id"].as_str().unwrap());
        stack
            .call(Method::PATCH, &path)
            .token(&owner)
            .header("if-match", "\"v1\"")
            .json(&json!({"price_minor": 2000 + 500 * i as i64}))
            .send()
            .await
            .assert_status(200);
        variants.push(v["id"].as_str().unwrap().to_owned());
    }
    let storefront = stack
        .call(Method::POST, &format!("/vendors/{vendor}/storefronts"))
        .token(&owner)
        .json(&json!({"name": format!("Gifts of {vendor}"), "slug": format!("{vendor}-gifts"), "currency": "EUR"}))
        .send()
        .await;
    storefront.assert_status(201);
    let storefront = storefront.json["id"].as_str().unwrap().to_owned();
    stack
        .call(Method::PUT, &format!("/vendors/{vendor}/storefronts/{storefront}/products/{product}"))
        .token(&owner)
        .json(&json!({"sort_order": 1}))
        .send()
        .await
        .assert_status(201);
    let buyer = stack.staff(vendor, "buyer");
    let staff = stack.staff(vendor, "fulfillment");
    GiftShop { vendor: vendor.to_owned(), owner, buyer, staff, webhook_secret, storefront, product, variants }
}

pub fn recipients(n: usize, vendor: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut r = json!({"name": format!("Recipient {i}"), "email": format!("r{i}@{vendor}.example"),
                "shipping_method_id": "std", "gift_message": format!("Thank you, number {i}!")});
            // Every third recipient chooses the address; the others get it from the buyer.
            if i % 3 != 2 {
                r["address"] =
                    json!({"line1": format!("Street {i}"), "city": "Berlin", "postal_code": "10115", "country": "DE"});
            }
            r
        })
        .collect()
}

impl GiftShop {
    pub async fn checkout(&self, stack: &Stack, body: Value) -> Reply {
        stack
            .call(Method::POST, &format!("/vendors/{}/storefronts/{}/orders", self.vendor, self.storefront))
            .token(&self.buyer)
            .json(&body)
            .send()
            .await
    }

    /// A paid-for bundle of one M box for each recipient; returns the order.
    pub async fn order_for(&self, stack: &Stack, recipients: Vec<Value>) -> Value {
        let reply = self
            .checkout(
                stack,
                json!({"items": [{"product_id": self.product, "variant_id": self.variants[1], "quantity": 1}],
                    "sender_name": "Acme Corp", "recipients": recipients}),
            )
            .await;
        reply.assert_status(201);
        reply.json["order"].clone()
    }

    /// Delivers a Stripe event to the vendor's webhook endpoint, signed with `secret` at `t`.
    pub async fn deliver(&self, stack: &Stack, body: &[u8], secret: &str, t: i64) -> Reply {
        let signature = bestow::integrations::stripe::signature_header(body, t, secret);
        stack
            .call(Method::POST, &format!("/webhooks/stripe/{}", self.vendor))
            .header("stripe-signature", &signature)
            .raw(body.to_vec(), "application/json; charset=utf-8")
            .send()
            .await
    }

    pub async fn order(&self, stack: &Stack, id: &str) -> Value {
        stack.call(Method::GET, &format!("/vendors/{}/orders/{id}", self.vendor)).token(&self.owner).send().await.json
    }

    pub async fn wait_split(&self, stack: &Stack, id: &str) -> Value {
        eventually(120, "the order to be split", async || {
            let order = self.order(stack, id).await;
            (order["status"] == "split").then_some(order)
        })
        .await
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

/// Units and code claims of an order, straight from the table: (unit ids, codes of units,
/// codes claimed globally for the order).
pub async fn stored_units(stack: &Stack, order_id: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let items = stack.all_items().await;
    let units: Vec<_> =
        items.iter().filter(|i| s(i, "entity") == "fulfillment_unit" && s(i, "order_id") == order_id).collect();
    let claims: Vec<String> = items
        .iter()
        .filter(|i| s(i, "entity") == "redemption_code" && s(i, "order_id") == order_id)
        .map(|i| s(i, "PK"))
        .collect();
    (units.iter().map(|u| s(u, "id")).collect(), units.iter().map(|u| s(u, "code")).collect(), claims)
}

fn assert_one_set(units: &(Vec<String>, Vec<String>, Vec<String>), n: usize) {
    let (ids, codes, claims) = units;
    assert_eq!(ids.len(), n, "one unit per recipient");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), n);
    assert_eq!(codes.iter().collect::<BTreeSet<_>>().len(), n, "every code is unique");
    assert_eq!(claims.len(), n, "one global claim per code, none orphaned");
    let claimed: BTreeSet<String> = claims.iter().map(|pk| pk.trim_start_matches("G#CODE#").to_owned()).collect();
    assert_eq!(claimed, codes.iter().cloned().collect(), "each unit's code is the one claimed");
}

#[tokio::test]
async fn a_gift_order_goes_from_checkout_to_gift_emails_with_qr_codes() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "flow").await;
    let reply = shop
        .checkout(
            &stack,
            json!({"items": [{"product_id": shop.product, "variant_id": shop.variants[1], "quantity": 2}],
                "sender_name": "Acme Corp", "buyer_email": "buyer@acme.example", "recipients": recipients(3, "flow")}),
        )
        .await;
    reply.assert_status(201);
    let order = &reply.json["order"];
    let id = order["id"].as_str().unwrap().to_owned();
    // 3 recipients × 2 × 2500, shipping 3 × 495, tax 19 % of both, all in minor units.
    let items = 3 * 2 * 2500;
    let shipping = 3 * 495;
    let tax = ((items + shipping) * 1900 + 5000) / 10000;
    assert_eq!(
        order["totals"],
        json!({"items_minor": items, "shipping_minor": shipping, "tax_minor": tax,
        "total_minor": items + shipping + tax})
    );
    assert_eq!(order["status"], "awaiting_payment");
    assert_eq!(order["lines"][0]["swap_variant_ids"], json!([shop.variants[0]]), "S is no dearer than M; L is");
    let pi = order["payment_intent_id"].as_str().unwrap().to_owned();
    assert!(reply.json["client_secret"].as_str().unwrap().starts_with(&format!("{pi}_secret_")));

    // The PaymentIntent in Stripe: the order's total, on the vendor's key, idempotently.
    let intent = stack.stripe.payment_intent(&pi).expect("the PaymentIntent exists in Stripe");
    assert_eq!(intent["amount"], items + shipping + tax);
    assert_eq!(intent["currency"], "eur");
    assert_eq!(intent["metadata"]["bestow_order"], id.as_str());
    let created = stack.stripe.requests().into_iter().find(|r| r.path == "/v1/payment_intents").unwrap();
    assert_eq!(created.secret_key.as_deref(), Some("sk_test_abcdefgh1234"));
    assert_eq!(created.idempotency_key, Some(format!("bestow-order-flow-{id}")));

    // Stripe says it is paid: the order is split into three units with their own codes.
    let event = stack.stripe.succeed_payment(&pi).unwrap();
    let delivered = shop.deliver(&stack, event.to_string().as_bytes(), &shop.webhook_secret, now()).await;
    delivered.assert_status(200);
    assert_eq!(delivered.json["outcome"], "applied");
    let split = shop.wait_split(&stack, &id).await;
    assert_eq!(split["split"]["units_created"], 3);
    assert_one_set(&stored_units(&stack, &id).await, 3);

    let units = stack.call(Method::GET, &format!("/vendors/flow/orders/{id}/units")).token(&shop.buyer).send().await;
    units.assert_status(200);
    let units = units.json["items"].as_array().unwrap().clone();
    assert_eq!(
        units.iter().map(|u| u["status"].as_str().unwrap()).collect::<Vec<_>>(),
        ["ready", "ready", "awaiting_address"]
    );
    for (i, unit) in units.iter().enumerate() {
        assert_eq!(unit["id"], format!("{id}-{:05}", i + 1));
        assert_eq!(unit["code"].as_str().unwrap().len(), 19, "XXXX-XXXX-XXXX-XXXX");
        assert_eq!(
            unit["lines"],
            json!([{"product_id": shop.product, "variant_id": shop.variants[1], "quantity": 2,
            "paid_unit_minor": 2500, "allowed_variant_ids": [shop.variants[1], shop.variants[0]]}])
        );
    }

    // Each recipient gets the gift email with the link, the code and the QR code inline.
    for (i, unit) in units.iter().enumerate() {
        let to = format!("r{i}@flow.example");
        let mail = eventually(60, "the gift email", async || mail_for(&to).into_iter().next()).await;
        let data = mail["data"].as_str().unwrap();
        let code = unit["code"].as_str().unwrap();
        assert!(data.contains(&format!("flow-gifts/gifts/{code}")), "the link is in the email: {data}");
        assert!(data.contains("Content-ID: <gift-qr>") && data.contains("image/png"), "the QR code is inline");
        assert!(data.contains(&format!("Thank you, number {i}!")));
    }
    // The QR codes are stored under the vendor's prefix, as PNG and SVG.
    let bucket = stack.names.bucket("AssetsBucket").unwrap().to_owned();
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.sdk).force_path_style(true).build());
    for ext in ["png", "svg"] {
        let key = format!("vendors/flow/gifts/{}/qr.{ext}", units[0]["id"].as_str().unwrap());
        let object = s3.get_object().bucket(&bucket).key(&key).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
        assert!(object.content_length().unwrap_or_default() > 100, "{key}");
    }
    eventually(30, "every unit to be notified", async || {
        let units =
            stack.call(Method::GET, &format!("/vendors/flow/orders/{id}/units")).token(&shop.owner).send().await;
        units.json["items"].as_array().unwrap().iter().all(|u| u["gift"] == "notified").then_some(())
    })
    .await;

    // The third recipient (no address given) opens the gift, swaps to the cheaper S and
    // enters an address; a dearer variant and an address outside the zone are refused.
    let code = units[2]["code"].as_str().unwrap().to_lowercase().replace('-', " ");
    let gift_path = format!("/gifts/{}", units[2]["code"].as_str().unwrap());
    let gift = stack.call(Method::GET, &format!("/gifts/{}", code.replace(' ', "%20"))).send().await;
    gift.assert_status(200);
    assert_eq!(gift.json["gift"], "opened");
    assert_eq!(gift.json["sender_name"], "Acme Corp");
    assert_eq!(gift.json["changeable"], true);
    let choices: Vec<&str> = gift.json["lines"][0]["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["variant_id"].as_str().unwrap())
        .collect();
    assert_eq!(choices, [shop.variants[1].as_str(), shop.variants[0].as_str()], "M as bought, or the cheaper S");
    assert!(!gift.text.contains("_minor"), "no prices: {}", gift.text);
    let berlin = json!({"line1": "Torstr. 1", "city": "Berlin", "postal_code": "10119", "country": "DE"});
    let accept = |body: Value| stack.call(Method::PUT, &gift_path).json(&body).send();
    accept(json!({"variant_ids": [shop.variants[2]], "address": berlin})).await.assert_problem(422);
    let abroad = json!({"line1": "1 Main St", "city": "Austin", "postal_code": "78701", "country": "US"});
    accept(json!({"address": abroad})).await.assert_problem(422);
    accept(json!({"variant_ids": [shop.variants[0]]})).await.assert_problem(422);
    let accepted = accept(json!({"variant_ids": [shop.variants[0]], "address": berlin})).await;
    accepted.assert_status(200);
    assert_eq!((accepted.json["gift"].as_str(), accepted.json["status"].as_str()), (Some("accepted"), Some("ready")));
    assert_eq!(accepted.json["lines"][0]["variant_id"], shop.variants[0].as_str());
    stack
        .call(Method::POST, &format!("{gift_path}/thank-you"))
        .json(&json!({"note": "Thank you, Acme!"}))
        .send()
        .await
        .assert_status(200);

    // Staff work the queue: all three are ready; pack two, ship the third (emailed).
    let queue = stack.call(Method::GET, "/vendors/flow/units?status=ready").token(&shop.staff).send().await;
    assert_eq!(queue.json["items"].as_array().unwrap().len(), 3, "{}", queue.text);
    let fulfil =
        |body: Value| stack.call(Method::POST, "/vendors/flow/units/fulfil").token(&shop.staff).json(&body).send();
    let unit_id = |i: usize| units[i]["id"].as_str().unwrap().to_owned();
    fulfil(json!({"action": "pack", "units": [{"unit_id": unit_id(0)}, {"unit_id": unit_id(1)}]}))
        .await
        .assert_status(200);
    fulfil(json!({"action": "ship", "units": [{"unit_id": unit_id(2)}]})).await.assert_problem(422);
    let shipped = fulfil(json!({"action": "ship", "units": [{"unit_id": unit_id(2), "carrier": "DHL",
        "tracking_number": "00340434161234567890"}]}))
    .await;
    shipped.assert_status(200);
    assert_eq!(shipped.json["units"][0]["status"], "shipped");
    let mail = eventually(60, "the shipment email", async || {
        mail_for("r2@flow.example").into_iter().find(|m| m["data"].as_str().unwrap().contains("00340434161234567890"))
    })
    .await;
    assert!(mail["data"].as_str().unwrap().contains("DHL"));
    let shipped_view = stack.call(Method::GET, &gift_path).send().await;
    assert_eq!(
        (shipped_view.json["status"].as_str(), shipped_view.json["changeable"].as_bool()),
        (Some("shipped"), Some(false))
    );
    accept(json!({"address": berlin})).await.assert_problem(409);

    // The buyer sees the thank-you note; a packed unit is refunded through Stripe.
    let seen = stack.call(Method::GET, &format!("/vendors/flow/orders/{id}/units")).token(&shop.buyer).send().await;
    assert_eq!(seen.json["items"][2]["thank_you_note"], "Thank you, Acme!");
    let refund = stack
        .call(Method::POST, &format!("/vendors/flow/orders/{id}/refunds"))
        .token(&shop.owner)
        .json(&json!({"unit_numbers": [1], "reason": "left the company"}))
        .send()
        .await;
    refund.assert_status(201);
    let unit_amount = units[0]["amount_minor"].as_i64().unwrap();
    assert_eq!(
        (refund.json["refunds"][0]["status"].as_str(), refund.json["refunds"][0]["amount_minor"].as_i64()),
        (Some("succeeded"), Some(unit_amount))
    );
    let in_stripe = stack.stripe.refunds();
    assert_eq!(in_stripe.len(), 1);
    assert_eq!(
        (in_stripe[0]["amount"].as_i64(), in_stripe[0]["payment_intent"].as_str()),
        (Some(unit_amount), Some(pi.as_str()))
    );
    let after = shop.order(&stack, &id).await;
    assert_eq!(after["refunded_minor"], unit_amount);
    let all_units =
        stack.call(Method::GET, &format!("/vendors/flow/orders/{id}/units")).token(&shop.owner).send().await;
    assert_eq!(all_units.json["items"][0]["status"], "cancelled");
    assert_eq!(all_units.json["items"][0]["gift"], "cancelled");
    // The shipped unit cannot be refunded here, nor the cancelled one again.
    let again = stack
        .call(Method::POST, &format!("/vendors/flow/orders/{id}/refunds"))
        .token(&shop.owner)
        .json(&json!({"unit_numbers": [1, 3]}))
        .send()
        .await;
    again.assert_problem(422);
    assert_eq!(again.json["errors"].as_array().unwrap().len(), 2, "{}", again.text);

    let audit = stack.call(Method::GET, "/vendors/flow/audit?limit=100").token(&shop.owner).send().await;
    let actions: Vec<&str> =
        audit.json["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in [
        "order.created",
        "order.paid",
        "order.split",
        "units.notified",
        "unit.opened",
        "unit.accepted",
        "unit.thanked",
        "units.packed",
        "units.shipped",
        "refund.requested",
        "refund.succeeded",
    ] {
        assert!(actions.contains(&action), "{action} is audited: {actions:?}");
    }
    assert!(stack.key_violations().await.is_empty());
}

#[tokio::test]
async fn webhooks_with_a_bad_signature_a_stale_time_another_vendors_secret_or_a_tampered_body_change_nothing() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "sig").await;
    let other = gift_shop(&stack, "sig-other").await;
    let order = shop.order_for(&stack, recipients(2, "sig")).await;
    let id = order["id"].as_str().unwrap();
    let event = stack.stripe.succeed_payment(order["payment_intent_id"].as_str().unwrap()).unwrap();
    let body = event.to_string();

    let tampered = body.replace("\"livemode\":false", "\"livemode\":true");
    assert_ne!(tampered, body);
    let signed_then_tampered = {
        let signature = bestow::integrations::stripe::signature_header(body.as_bytes(), now(), &shop.webhook_secret);
        stack
            .call(Method::POST, "/webhooks/stripe/sig")
            .header("stripe-signature", &signature)
            .raw(tampered.into_bytes(), "application/json")
            .send()
            .await
    };
    let no_signature = stack
        .call(Method::POST, "/webhooks/stripe/sig")
        .raw(body.clone().into_bytes(), "application/json")
        .send()
        .await;
    let attempts = [
        ("tampered body", signed_then_tampered),
        ("no signature", no_signature),
        ("stale timestamp", shop.deliver(&stack, body.as_bytes(), &shop.webhook_secret, now() - 400).await),
        ("another vendor's secret", shop.deliver(&stack, body.as_bytes(), &other.webhook_secret, now()).await),
        ("made-up secret", shop.deliver(&stack, body.as_bytes(), "whsec_guess", now()).await),
    ];
    for (what, reply) in &attempts {
        reply.assert_problem(400);
        let detail = reply.json["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("Stripe-Signature"), "{what}: {detail}");
    }
    assert_eq!(shop.order(&stack, id).await["status"], "awaiting_payment", "nothing applied");
    let events = stack.all_items().await.into_iter().filter(|i| s(i, "entity") == "stripe_event").count();
    assert_eq!(events, 0, "nothing recorded");
    // The other vendor's endpoint does not accept this vendor's events either.
    other.deliver(&stack, body.as_bytes(), &shop.webhook_secret, now()).await.assert_problem(400);

    shop.deliver(&stack, body.as_bytes(), &shop.webhook_secret, now()).await.assert_status(200);
    shop.wait_split(&stack, id).await;
}

#[tokio::test]
async fn the_same_webhook_five_times_and_two_split_workers_make_one_set_of_units() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "dupes").await;
    // 120 recipients from a CSV: three chunks of the split.
    let mut csv =
        String::from("name,email,shipping_method_id,gift_message,line1,line2,city,postal_code,region,country\n");
    for i in 0..120 {
        csv.push_str(&format!("\"Recipient, {i}\",r{i}@dupes.example,std,Thanks!,Street {i},,Paris,75001,,FR\n"));
    }
    let reply = shop
        .checkout(
            &stack,
            json!({"items": [{"product_id": shop.product, "variant_id": shop.variants[0], "quantity": 1}],
                "sender_name": "Acme Corp", "recipients_csv": csv}),
        )
        .await;
    reply.assert_status(201);
    let id = reply.json["order"]["id"].as_str().unwrap().to_owned();
    assert_eq!(reply.json["order"]["recipient_count"], 120);
    let event = stack.stripe.succeed_payment(reply.json["order"]["payment_intent_id"].as_str().unwrap()).unwrap();
    let body = event.to_string();

    let t = now();
    let deliveries =
        futures_util::future::join_all((0..5).map(|_| shop.deliver(&stack, body.as_bytes(), &shop.webhook_secret, t)))
            .await;
    let applied = deliveries.iter().filter(|r| r.status == 200 && r.json["outcome"] == "applied").count();
    let duplicates = deliveries.iter().filter(|r| r.status == 200 && r.json["duplicate"] == true).count();
    assert_eq!((applied, duplicates), (1, 4), "{:?}", deliveries.iter().map(|r| &r.text).collect::<Vec<_>>());

    // Two more workers at once, besides the queued job.
    let scope = bestow::tenancy::guard::job_scope("dupes", "order_split").unwrap();
    let (a, b) = tokio::join!(
        bestow::orders::jobs::split_order(&stack.app, &scope, &id),
        bestow::orders::jobs::split_order(&stack.app, &scope, &id)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.already_split || a.chunks_written + a.chunks_found == 3, "{a:?}");
    assert!(b.already_split || b.chunks_written + b.chunks_found == 3, "{b:?}");
    let order = shop.wait_split(&stack, &id).await;
    assert_eq!(order["split"]["units_created"], 120);
    assert_one_set(&stored_units(&stack, &id).await, 120);
    let recorded = stack.all_items().await.into_iter().filter(|i| s(i, "entity") == "stripe_event").count();
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn a_split_killed_half_way_completes_on_retry_without_duplicates() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "crash").await;
    let order = shop.order_for(&stack, recipients(600, "crash")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let scope = bestow::tenancy::guard::job_scope("crash", "order_split").unwrap();
    // Paid without the webhook, so no queued job runs beside the one under test.
    mark_paid(&stack, &scope, &id).await;

    let run = tokio::spawn({
        let (app, scope, id) = (stack.app.clone(), scope.clone(), id.clone());
        async move { bestow::orders::jobs::split_order(&app, &scope, &id).await }
    });
    // Killed as soon as the first chunk is in: the later chunks are in flight or not begun.
    let repo = bestow::orders::repo::OrderRepo::new(&stack.app.table, &scope);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while repo.unit(&id, 1).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the first chunk never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    run.abort();
    let _ = run.await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (partial, _, _) = stored_units(&stack, &id).await;
    assert!(!partial.is_empty() && partial.len() < 600, "killed half-way: {} units", partial.len());
    assert_eq!(partial.len() % 50, 0, "chunks are all or nothing");
    assert_eq!(shop.order(&stack, &id).await["status"], "paid");

    let outcome = bestow::orders::jobs::split_order(&stack.app, &scope, &id).await.unwrap();
    assert_eq!(outcome.chunks_written + outcome.chunks_found, 12, "{outcome:?}");
    assert_eq!(outcome.chunks_found as usize, partial.len() / 50, "{outcome:?}");
    assert_one_set(&stored_units(&stack, &id).await, 600);
    assert_eq!(shop.order(&stack, &id).await["status"], "split");
    // And once more: nothing new.
    let again = bestow::orders::jobs::split_order(&stack.app, &scope, &id).await.unwrap();
    assert!(again.already_split);
}

async fn mark_paid(stack: &Stack, scope: &bestow::tenancy::TenantScope, id: &str) {
    let repo = bestow::orders::repo::OrderRepo::new(&stack.app.table, scope);
    let order = repo.order(id).await.unwrap().unwrap();
    let mut paid = order.value.clone();
    paid.status = bestow::orders::model::OrderStatus::Paid;
    stack.app.table.transact(vec![repo.save_order(&paid, order.version).unwrap()]).await.unwrap();
}

#[tokio::test]
async fn checkouts_that_cannot_be_fulfilled_are_refused_and_write_nothing() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "refuse").await;
    let item = json!([{"product_id": shop.product, "variant_id": shop.variants[0], "quantity": 1}]);
    let cases = [
        ("no recipients", json!({"items": item, "sender_name": "A", "recipients": []})),
        (
            "unknown method",
            json!({"items": item, "sender_name": "A", "recipients": [
            {"name": "N", "email": "n@x.example", "shipping_method_id": "teleport"}]}),
        ),
        (
            "country outside every zone",
            json!({"items": item, "sender_name": "A", "recipients": [
            {"name": "N", "email": "n@x.example", "shipping_method_id": "std",
             "address": {"line1": "1 Main St", "city": "Austin", "postal_code": "78701", "country": "US"}}]}),
        ),
        (
            "bad email",
            json!({"items": item, "sender_name": "A", "recipients": [
            {"name": "N", "email": "not-an-email", "shipping_method_id": "std"}]}),
        ),
        (
            "unknown variant",
            json!({"items": [{"product_id": shop.product, "variant_id": "nope", "quantity": 1}],
            "sender_name": "A", "recipients": [{"name": "N", "email": "n@x.example", "shipping_method_id": "std"}]}),
        ),
        (
            "zero quantity",
            json!({"items": [{"product_id": shop.product, "variant_id": shop.variants[0], "quantity": 0}],
            "sender_name": "A", "recipients": [{"name": "N", "email": "n@x.example", "shipping_method_id": "std"}]}),
        ),
        ("both lists", json!({"items": item, "sender_name": "A", "recipients": [], "recipients_csv": "x"})),
        (
            "bad CSV row",
            json!({"items": item, "sender_name": "A", "recipients_csv":
            "name,email,shipping_method_id,gift_message,line1,line2,city,postal_code,region,country\nAna,ana@x.example,std,,,,,,,\nBen,nope,std,,,,,,,\n"}),
        ),
    ];
    for (what, body) in cases {
        let reply = shop.checkout(&stack, body).await;
        assert_eq!(reply.status, 422, "{what}: {}", reply.text);
    }
    let bad_csv = shop
        .checkout(&stack, json!({"items": item, "sender_name": "A", "recipients_csv":
            "name,email,shipping_method_id,gift_message,line1,line2,city,postal_code,region,country\nAna,ana@x.example,std,,,,,,,\nBen,nope,std,,,,,,,\n"}))
        .await;
    assert_eq!(bad_csv.json["errors"][0]["pointer"], "/recipients_csv/line/3/email", "{}", bad_csv.text);
    // Nothing reached Stripe and nothing was stored.
    assert!(stack.stripe.requests().is_empty());
    let orders = stack.call(Method::GET, "/vendors/refuse/orders").token(&shop.owner).send().await;
    assert_eq!(orders.json["items"], json!([]));
    let stored = stack.all_items().await.into_iter().filter(|i| s(i, "entity").starts_with("order")).count();
    assert_eq!(stored, 0);
    // A buyer sees only their own orders; another buyer's id is unknown.
    let order = shop.order_for(&stack, recipients(1, "refuse")).await;
    let path = format!("/vendors/refuse/orders/{}", order["id"].as_str().unwrap());
    stack.call(Method::GET, &path).token(&shop.buyer).send().await.assert_status(200);
    let stranger = stack.keys.issue(
        &bestow_infra::devtoken::DevUser { sub: "someone-else", group: "buyer", vendor_id: Some("refuse") },
        600,
    );
    stack.call(Method::GET, &path).token(&stranger).send().await.assert_problem(404);
}

#[tokio::test]
async fn a_declined_payment_can_be_retried_and_late_or_unknown_events_are_recorded_not_applied() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "declined").await;
    let order = shop.order_for(&stack, recipients(2, "declined")).await;
    let id = order["id"].as_str().unwrap();
    let pi = order["payment_intent_id"].as_str().unwrap();
    let (stack, shop) = (&stack, &shop);
    let deliver = |event: Value| {
        let body = event.to_string();
        async move { shop.deliver(stack, body.as_bytes(), &shop.webhook_secret, now()).await }
    };

    let declined = deliver(stack.stripe.fail_payment(pi).unwrap()).await;
    assert_eq!(declined.json["outcome"], "applied");
    assert_eq!(shop.order(stack, id).await["status"], "payment_failed");
    // The buyer tries again with another card: paid, then split.
    deliver(stack.stripe.succeed_payment(pi).unwrap()).await.assert_status(200);
    shop.wait_split(stack, id).await;
    // A cancellation arriving after the payment does not fit: recorded, not applied.
    let intent = stack.stripe.payment_intent(pi).unwrap();
    let late = deliver(stack.stripe.event("payment_intent.canceled", intent)).await;
    late.assert_status(200);
    assert!(late.json["outcome"].as_str().unwrap().contains("does not apply"), "{}", late.text);
    assert_eq!(shop.order(stack, id).await["status"], "split");
    // Events of other PaymentIntents and of other types are recorded and answered 200, so
    // Stripe stops sending them.
    let foreign = json!({"id": "pi_3unknown000000000000000", "object": "payment_intent", "amount": 100});
    let unknown = deliver(stack.stripe.event("payment_intent.succeeded", foreign)).await;
    assert!(unknown.json["outcome"].as_str().unwrap().contains("no order"), "{}", unknown.text);
    let other = deliver(stack.stripe.event("customer.created", json!({"id": "cus_1"}))).await;
    assert!(other.json["outcome"].as_str().unwrap().contains("not an event Bestow acts on"));
    let recorded = stack.all_items().await.into_iter().filter(|i| s(i, "entity") == "stripe_event").count();
    assert_eq!(recorded, 5);
}
