//! Vendor plans on Stripe Billing (the platform's own account on the Stripe fake): a vendor
//! subscribes through Checkout, Billing's webhooks move its plan state whatever their order,
//! and the plan's limits refuse, with a clear problem and nothing written, where resources are
//! created.

use bestow_tests::{BILLING_WEBHOOK_SECRET, Method, Reply, Stack};
use serde_json::{Value, json};

use crate::orders::{GiftShop, gift_shop, now, recipients};

async fn deliver(stack: &Stack, event: &Value) -> Reply {
    let body = event.to_string();
    let signature = bestow::integrations::stripe::signature_header(body.as_bytes(), now(), BILLING_WEBHOOK_SECRET);
    stack
        .call(Method::POST, "/webhooks/stripe-billing")
        .header("stripe-signature", &signature)
        .raw(body.into_bytes(), "application/json")
        .send()
        .await
}

/// Subscribes the vendor to `plan` through Checkout and returns the subscription id and the
/// events Stripe sent (not delivered yet).
async fn subscribe(stack: &Stack, shop: &GiftShop, plan: &str) -> (String, Vec<Value>) {
    let started = stack
        .call(Method::POST, &format!("/vendors/{}/plan/checkout", shop.vendor))
        .token(&shop.owner)
        .json(&json!({ "plan_id": plan, "success_url": "https://v.example/ok", "cancel_url": "https://v.example/no" }))
        .send()
        .await;
    started.assert_status(201);
    let session = started.json["session_id"].as_str().unwrap().to_owned();
    assert!(started.json["checkout_url"].as_str().unwrap().contains(&session));
    let events = stack.stripe.complete_checkout(&session).expect("the session completes");
    let subscription = stack.stripe.checkout_session(&session).unwrap()["subscription"].as_str().unwrap().to_owned();
    (subscription, events)
}

async fn plan(stack: &Stack, shop: &GiftShop) -> Value {
    let reply = stack.call(Method::GET, &format!("/vendors/{}/plan", shop.vendor)).token(&shop.owner).send().await;
    reply.assert_status(200);
    reply.json
}

#[tokio::test]
async fn subscription_webhooks_out_of_order_or_repeated_leave_the_right_plan_state() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "plan-co").await;

    let offer = stack.call(Method::GET, "/plans").send().await;
    offer.assert_status(200);
    let available: Vec<&str> = offer.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["available"] == true)
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(available, ["starter", "growth"]);
    // Never subscribed: not limited (the operator's contract vendors).
    assert_eq!(plan(&stack, &shop).await["entitlement"]["standing"], "none");

    // Bad requests are refused before anything reaches Stripe.
    let path = format!("/vendors/{}/plan/checkout", shop.vendor);
    let bad = stack
        .call(Method::POST, &path)
        .token(&shop.owner)
        .json(&json!({ "plan_id": "scale", "success_url": "ftp://x", "cancel_url": "https://v.example" }))
        .send()
        .await;
    bad.assert_status(422);
    assert_eq!(bad.json["errors"].as_array().unwrap().len(), 2, "{}", bad.json);
    let manager = stack.staff(&shop.vendor, "manager");
    let body =
        json!({ "plan_id": "growth", "success_url": "https://v.example/ok", "cancel_url": "https://v.example/no" });
    stack.call(Method::POST, &path).token(&manager).json(&body).send().await.assert_status(403);
    assert!(stack.stripe.customers().is_empty());

    let (subscription, events) = subscribe(&stack, &shop, "growth").await;
    // Delivered newest first, each twice.
    for event in events.iter().rev() {
        deliver(&stack, event).await.assert_status(200);
        let again = deliver(&stack, event).await;
        again.assert_status(200);
        assert_eq!(again.json["duplicate"], true);
    }
    let view = plan(&stack, &shop).await;
    assert_eq!(view["state"]["plan_id"], "growth");
    assert_eq!(view["state"]["subscription_id"], subscription.as_str());
    assert_eq!(view["entitlement"]["standing"], "active");
    assert_eq!(view["entitlement"]["limits"]["storefronts"], 5);
    // One customer, however the checkout was retried.
    assert_eq!(stack.stripe.customers().len(), 1);
    // Subscribed already: a second checkout is refused.
    stack.call(Method::POST, &path).token(&shop.owner).json(&body).send().await.assert_status(409);

    // The renewal fails: past due, within grace, still taking orders. Its events arrive
    // shuffled, and an old event of the first batch after them.
    let mut failing = stack.stripe.renew_subscription(&subscription, false).unwrap();
    failing.rotate_left(2);
    for event in failing.iter().chain(events.first()) {
        deliver(&stack, event).await.assert_status(200);
    }
    let view = plan(&stack, &shop).await;
    assert_eq!(view["state"]["status"], "past_due");
    assert_eq!(view["entitlement"]["standing"], "grace");
    assert_eq!(view["entitlement"]["can_take_orders"], true);

    // The plan charge is in the ledger once, though invoice.paid came twice.
    let scope = bestow::tenancy::guard::job_scope(&shop.vendor, "test").unwrap();
    let charges: Vec<_> = bestow::ledger::repo::LedgerRepo::new(&stack.app.table, &scope)
        .entries_between(time::macros::datetime!(2000-01-01 0:00 UTC), time::macros::datetime!(2999-01-01 0:00 UTC))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == bestow::ledger::model::EntryKind::SubscriptionCharge)
        .collect();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0].amount_minor, -19_900);

    // Past the grace period: no new orders (402), nothing written, nothing lost.
    let vendors = bestow::vendors::repo::VendorRepo::new(&stack.app.table, &scope);
    let state = vendors.config::<bestow::plans::model::PlanState>().await.unwrap().unwrap();
    let mut lapsed = state.value.clone();
    lapsed.past_due_since = Some(now() - 8 * 86_400);
    vendors.put_config(&lapsed, Some(state.version)).await.unwrap();
    let intents_before = stack.stripe.payment_intents().len();
    let refused = shop
        .checkout(
            &stack,
            json!({"items": [{"product_id": shop.product, "variant_id": shop.variants[1], "quantity": 1}],
                "sender_name": "Acme Corp", "recipients": recipients(1, &shop.vendor)}),
        )
        .await;
    assert!(refused.assert_problem(402).ends_with("/payment-required"), "{}", refused.text);
    assert!(refused.json["detail"].as_str().unwrap().contains("lapsed"));
    assert_eq!(stack.stripe.payment_intents().len(), intents_before, "nothing reached Stripe");
    let orders = stack.call(Method::GET, &format!("/vendors/{}/orders", shop.vendor)).token(&shop.owner).send().await;
    assert_eq!(orders.json["items"], json!([]), "no order written");
    let products =
        stack.call(Method::GET, &format!("/vendors/{}/products", shop.vendor)).token(&shop.owner).send().await;
    assert_eq!(products.json["items"].as_array().unwrap().len(), 1, "the catalogue is untouched");

    // The retry succeeds: active again, orders again.
    let invoice = stack.stripe.invoices_of(&subscription).last().unwrap()["id"].as_str().unwrap().to_owned();
    for event in stack.stripe.pay_open_invoice(&invoice).unwrap() {
        deliver(&stack, &event).await.assert_status(200);
    }
    let view = plan(&stack, &shop).await;
    assert_eq!(view["entitlement"]["standing"], "active");
    assert!(view["state"]["past_due_since"].is_null());
    shop.order_for(&stack, recipients(1, &shop.vendor)).await;

    // A wrong signature is refused and changes nothing.
    let forged = stack
        .call(Method::POST, "/webhooks/stripe-billing")
        .header("stripe-signature", "t=1,v1=00")
        .raw(events[0].to_string().into_bytes(), "application/json")
        .send()
        .await;
    forged.assert_status(400);
}

#[tokio::test]
async fn plan_limits_refuse_with_a_clear_problem_and_write_nothing() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "small-co").await;
    let (_, events) = subscribe(&stack, &shop, "starter").await;
    for event in &events {
        deliver(&stack, event).await.assert_status(200);
    }
    assert_eq!(plan(&stack, &shop).await["entitlement"]["limits"]["storefronts"], 1);

    // Storefronts: the one it has is the plan's one.
    let storefronts = format!("/vendors/{}/storefronts", shop.vendor);
    let second = stack
        .call(Method::POST, &storefronts)
        .token(&shop.owner)
        .json(&json!({"name": "Second", "slug": "small-co-second", "currency": "EUR"}))
        .send()
        .await;
    assert!(second.assert_problem(403).ends_with("/plan-limit-reached"), "{}", second.text);
    assert!(second.json["detail"].as_str().unwrap().contains("1 storefronts"), "{}", second.json);
    let listed = stack.call(Method::GET, &storefronts).token(&shop.owner).send().await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 1);
    // The slug was not claimed either: another vendor may take it.
    let other = stack.vendor("other-co").await;
    stack
        .call(Method::POST, "/vendors/other-co/storefronts")
        .token(&other)
        .json(&json!({"name": "Second", "slug": "small-co-second", "currency": "EUR"}))
        .send()
        .await
        .assert_status(201);

    // Recipients a month: 500 on Starter.
    let too_many = shop
        .checkout(
            &stack,
            json!({"items": [{"product_id": shop.product, "variant_id": shop.variants[1], "quantity": 1}],
                "sender_name": "Acme Corp", "recipients": recipients(501, &shop.vendor)}),
        )
        .await;
    assert!(too_many.assert_problem(403).ends_with("/plan-limit-reached"), "{}", too_many.text);
    assert!(too_many.json["detail"].as_str().unwrap().contains("500 recipients a month"));
    let orders = stack.call(Method::GET, &format!("/vendors/{}/orders", shop.vendor)).token(&shop.owner).send().await;
    assert_eq!(orders.json["items"], json!([]));
    // Paid orders count: after 3 paid recipients, 497 fit and 498 do not.
    let order = shop.order_for(&stack, recipients(3, &shop.vendor)).await;
    let event = stack.stripe.succeed_payment(order["payment_intent_id"].as_str().unwrap()).unwrap();
    shop.deliver(&stack, event.to_string().as_bytes(), &shop.webhook_secret, now()).await.assert_status(200);
    assert_eq!(plan(&stack, &shop).await["usage"]["recipients_this_month"], 3);
    let body = |n| {
        json!({"items": [{"product_id": shop.product, "variant_id": shop.variants[1], "quantity": 1}],
            "sender_name": "Acme Corp", "recipients": recipients(n, &shop.vendor)})
    };
    shop.checkout(&stack, body(498)).await.assert_problem(403);
    shop.checkout(&stack, body(497)).await.assert_status(201);

    // Products: 100 on Starter (it has 1).
    let products = format!("/vendors/{}/products", shop.vendor);
    for chunk in (0..99).collect::<Vec<_>>().chunks(11) {
        let creates = chunk.iter().map(|i| {
            stack.call(Method::POST, &products).token(&shop.owner).json(&json!({"title": format!("Item {i}")})).send()
        });
        for reply in futures_util::future::join_all(creates).await {
            assert!(reply.status == 201 || reply.status == 202, "{}", reply.text);
        }
    }
    let over =
        stack.call(Method::POST, &products).token(&shop.owner).json(&json!({"title": "One too many"})).send().await;
    assert!(over.assert_problem(403).ends_with("/plan-limit-reached"), "{}", over.text);
    assert_eq!(plan(&stack, &shop).await["usage"]["products"], 100);
}
