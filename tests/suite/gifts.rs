//! Gifts after the split: the code as the recipient's credential, expiry, and refunds that
//! follow Stripe's refund lifecycle.

use bestow_tests::{Method, Stack};
use serde_json::{Value, json};

use crate::orders::{gift_shop, now, recipients};

async fn split_order(stack: &Stack, shop: &crate::orders::GiftShop, n: usize) -> (String, Vec<Value>) {
    let order = shop.order_for(stack, recipients(n, &shop.vendor)).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let event = stack.stripe.succeed_payment(order["payment_intent_id"].as_str().unwrap()).unwrap();
    shop.deliver(stack, event.to_string().as_bytes(), &shop.webhook_secret, now()).await.assert_status(200);
    shop.wait_split(stack, &id).await;
    let units = stack
        .call(Method::GET, &format!("/vendors/{}/orders/{id}/units?limit=100", shop.vendor))
        .token(&shop.owner)
        .send()
        .await;
    (id, units.json["items"].as_array().unwrap().clone())
}

#[tokio::test]
async fn unknown_malformed_and_expired_codes_are_the_same_404() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "codes").await;
    let (_, units) = split_order(&stack, &shop, 2).await;
    let code = units[0]["code"].as_str().unwrap();
    stack.call(Method::GET, &format!("/gifts/{code}")).send().await.assert_status(200);

    // Unit 2's link expires (its expiry moved to the past, as time would).
    let (order_id, number) =
        bestow::fulfillment::model::FulfillmentUnit::parse_id(units[1]["id"].as_str().unwrap()).unwrap();
    let scope = bestow::tenancy::guard::job_scope("codes", "test").unwrap();
    let repo = bestow::orders::repo::OrderRepo::new(&stack.app.table, &scope);
    let unit = repo.unit(order_id, number).await.unwrap().unwrap();
    let mut expired = unit.value.clone();
    expired.expires_at = "2020-01-01T00:00:00Z".into();
    stack.app.table.transact(vec![repo.save_unit(&expired, unit.version).unwrap()]).await.unwrap();

    let details: Vec<String> = [
        format!("/gifts/{}", units[1]["code"].as_str().unwrap()),
        "/gifts/0000-0000-0000-0000".to_owned(),
        "/gifts/not-a-code".to_owned(),
        "/gifts/UUUU-UUUU-UUUU-UUUU".to_owned(),
    ]
    .into_iter()
    .map(|path| {
        let stack = &stack;
        async move {
            let reply = stack.call(Method::GET, &path).send().await;
            reply.assert_problem(404);
            reply.json["detail"].as_str().unwrap().to_owned()
        }
    })
    .collect::<futures_util::future::JoinAll<_>>()
    .await;
    assert!(details.windows(2).all(|w| w[0] == w[1]), "one answer for all: {details:?}");
    let expired_path = format!("/gifts/{}", units[1]["code"].as_str().unwrap());
    stack.call(Method::PUT, &expired_path).json(&json!({"address": null})).send().await.assert_problem(404);
}

#[tokio::test]
async fn refunds_follow_stripe_pending_then_succeeded_or_failed_and_retries_refund_once() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "refunds").await;
    let (id, units) = split_order(&stack, &shop, 4).await;
    let refund = |numbers: Value| {
        stack
            .call(Method::POST, &format!("/vendors/refunds/orders/{id}/refunds"))
            .token(&shop.owner)
            .json(&json!({"unit_numbers": numbers}))
            .send()
    };

    // Pending at Stripe: the units are held, not yet cancelled, and cannot be packed.
    stack.stripe.set_refund_status("pending");
    let pending = refund(json!([1, 2])).await;
    pending.assert_status(201);
    assert_eq!(pending.json["refunds"][0]["status"], "pending");
    let stripe_refund = pending.json["refunds"][0]["stripe_refund_id"].as_str().unwrap().to_owned();
    let held = stack
        .call(Method::POST, "/vendors/refunds/units/fulfil")
        .token(&shop.staff)
        .json(&json!({"action": "pack", "units": [{"unit_id": units[0]["id"]}]}))
        .send()
        .await;
    held.assert_problem(422);
    refund(json!([2])).await.assert_problem(422);
    assert_eq!(shop.order(&stack, &id).await["refunded_minor"], 0);

    // Stripe settles it: delivered three times, applied once.
    let event = stack.stripe.update_refund(&stripe_refund, "succeeded").unwrap().to_string();
    for _ in 0..3 {
        shop.deliver(&stack, event.as_bytes(), &shop.webhook_secret, now()).await.assert_status(200);
    }
    let both = units[0]["amount_minor"].as_i64().unwrap() + units[1]["amount_minor"].as_i64().unwrap();
    assert_eq!(shop.order(&stack, &id).await["refunded_minor"], both);
    let listed =
        stack.call(Method::GET, &format!("/vendors/refunds/orders/{id}/units")).token(&shop.owner).send().await;
    let statuses: Vec<&str> =
        listed.json["items"].as_array().unwrap().iter().map(|u| u["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["cancelled", "cancelled", "awaiting_address", "ready"]);

    // A refund Stripe fails releases its unit as it was.
    let failing = refund(json!([3])).await;
    failing.assert_status(201);
    let failing_id = failing.json["refunds"][0]["stripe_refund_id"].as_str().unwrap().to_owned();
    let event = stack.stripe.update_refund(&failing_id, "failed").unwrap().to_string();
    shop.deliver(&stack, event.as_bytes(), &shop.webhook_secret, now()).await.assert_status(200);
    let listed =
        stack.call(Method::GET, &format!("/vendors/refunds/orders/{id}/units")).token(&shop.owner).send().await;
    assert_eq!(listed.json["items"][2]["status"], "awaiting_address");
    assert_eq!(listed.json["items"][2]["refund_id"], Value::Null);

    // Stripe answering 500 twice: the client retries with the same idempotency key, and
    // Stripe refunds once.
    stack.stripe.set_refund_status("succeeded");
    stack.stripe.fail_next(2, 500);
    let retried = refund(json!([4])).await;
    retried.assert_status(201);
    assert_eq!(retried.json["refunds"][0]["status"], "succeeded");
    let refund_posts: Vec<_> = stack.stripe.requests().into_iter().filter(|r| r.path == "/v1/refunds").collect();
    let last_key = refund_posts.last().unwrap().idempotency_key.clone();
    assert_eq!(refund_posts.iter().filter(|r| r.idempotency_key == last_key).count(), 3, "two failures, one success");
    let succeeded: i64 = stack
        .stripe
        .refunds()
        .iter()
        .filter(|r| r["status"] == "succeeded")
        .map(|r| r["amount"].as_i64().unwrap())
        .sum();
    let order = shop.order(&stack, &id).await;
    assert_eq!(order["refunded_minor"], succeeded, "Bestow's refunded amount is Stripe's to the minor unit");
    assert_eq!(succeeded, both + units[3]["amount_minor"].as_i64().unwrap());

    // charge.refunded is recorded for reconciliation.
    let pi = order["payment_intent_id"].as_str().unwrap();
    let charge = stack.stripe.charge_refunded_event(pi).unwrap().to_string();
    let recorded = shop.deliver(&stack, charge.as_bytes(), &shop.webhook_secret, now()).await;
    recorded.assert_status(200);
    assert!(recorded.json["outcome"].as_str().unwrap().contains(&format!("refunded {succeeded}")), "{}", recorded.text);
}

#[tokio::test]
async fn a_packing_manifest_is_rendered_by_a_job_and_downloaded_by_a_presigned_url() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "manifest").await;
    let (id, units) = split_order(&stack, &shop, 60).await;
    let ready = units.iter().filter(|u| u["status"] == "ready").count();
    assert_eq!(ready, 40, "recipients with an address given by the buyer");

    let manifest =
        |body: Value| stack.call(Method::POST, "/vendors/manifest/manifests").token(&shop.staff).json(&body).send();
    manifest(json!({"unit_ids": ["nope"]})).await.assert_problem(422);
    let started = manifest(json!({"status": "ready", "order_id": id})).await;
    started.assert_status(202);
    let location = started.headers.get("location").unwrap().to_str().unwrap().to_owned();
    let done = bestow_tests::eventually(60, "the manifest", async || {
        let reply = stack.call(Method::GET, &location).token(&shop.staff).send().await;
        (reply.json["status"] == "succeeded").then_some(reply.json)
    })
    .await;
    assert_eq!(done["units"], 40);
    let url = done["download_url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature") && url.contains("/vendors/manifest/manifests/"), "{url}");
    let pdf = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-1.4") && pdf.ends_with(b"%%EOF\n"));
    let text = String::from_utf8_lossy(&pdf);
    let pages = done["pages"].as_u64().unwrap();
    assert!(pages >= 2, "40 units take more than a page");
    assert!(text.contains(&format!("/Count {pages}")));
    for unit in units.iter().filter(|u| u["status"] == "ready") {
        let line = format!("{} {} [ready]", unit["id"].as_str().unwrap(), unit["recipient_name"].as_str().unwrap());
        assert!(text.contains(&line), "{line} is listed");
    }
    assert!(text.contains("Gift Box \\227 M"), "the variant's title");
    assert!(
        !text.contains(units[2]["id"].as_str().unwrap()),
        "a unit awaiting its address is not in the ready manifest"
    );

    // By ids, including one awaiting its address.
    let picked = manifest(json!({"unit_ids": [units[0]["id"], units[2]["id"]]})).await;
    picked.assert_status(202);
    let location = picked.headers.get("location").unwrap().to_str().unwrap().to_owned();
    let done = bestow_tests::eventually(60, "the second manifest", async || {
        let reply = stack.call(Method::GET, &location).token(&shop.staff).send().await;
        (reply.json["status"] == "succeeded").then_some(reply.json)
    })
    .await;
    assert_eq!(done["units"], 2);
    // Another vendor's staff cannot read it.
    stack.vendor("manifest-other").await;
    let other_path = location.replace("/vendors/manifest/", "/vendors/manifest-other/");
    stack
        .call(Method::GET, &other_path)
        .token(&stack.staff("manifest-other", "owner"))
        .send()
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn the_hourly_sweep_reminds_once_and_expires_gifts_nobody_claimed() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "sweep").await;
    let (id, units) = split_order(&stack, &shop, 3).await;
    bestow_tests::eventually(60, "the gifts to be notified", async || {
        let listed =
            stack.call(Method::GET, &format!("/vendors/sweep/orders/{id}/units")).token(&shop.owner).send().await;
        listed.json["items"].as_array().unwrap().iter().all(|u| u["gift"] == "notified").then_some(())
    })
    .await;
    // Nothing is due yet.
    let scope = bestow::tenancy::guard::job_scope("sweep", "gift_reminders").unwrap();
    let now = now();
    let idle = bestow::fulfillment::service::sweep_vendor(&stack.app, &scope, now).await.unwrap();
    assert_eq!((idle.reminded, idle.expired), (0, 0));

    // Eight days later: every unredeemed recipient is reminded, once.
    let later = now + 8 * 86_400;
    let swept = bestow::fulfillment::service::sweep_vendor(&stack.app, &scope, later).await.unwrap();
    assert_eq!((swept.reminded, swept.expired), (3, 0));
    let again = bestow::fulfillment::service::sweep_vendor(&stack.app, &scope, later + 3600).await.unwrap();
    assert_eq!((again.reminded, again.expired), (0, 0), "one reminder per unit");
    for (i, unit) in units.iter().enumerate() {
        let to = format!("r{i}@sweep.example");
        let reminder = bestow_tests::eventually(60, "the reminder", async || {
            bestow_tests::mail_for(&to).into_iter().find(|m| m["data"].as_str().unwrap().contains("still waiting"))
        })
        .await;
        assert!(reminder["data"].as_str().unwrap().contains(unit["code"].as_str().unwrap()));
    }

    // Past the expiry (30 days by default): the unit nobody gave an address for expires and
    // will not ship; its link is gone; units with the buyer's address still ship.
    let expired = bestow::fulfillment::service::sweep_vendor(&stack.app, &scope, now + 31 * 86_400).await.unwrap();
    assert_eq!((expired.reminded, expired.expired), (0, 1));
    let listed = stack.call(Method::GET, &format!("/vendors/sweep/orders/{id}/units")).token(&shop.owner).send().await;
    let states: Vec<(&str, &str)> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["status"].as_str().unwrap(), u["gift"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("ready", "notified"), ("ready", "notified"), ("cancelled", "expired")]);
    stack.call(Method::GET, &format!("/gifts/{}", units[2]["code"].as_str().unwrap())).send().await.assert_problem(404);
    // The buyer can be refunded for it.
    stack
        .call(Method::POST, &format!("/vendors/sweep/orders/{id}/refunds"))
        .token(&shop.owner)
        .json(&json!({"unit_numbers": [3]}))
        .send()
        .await
        .assert_status(201);

    // The schedule itself fans out one job per active vendor.
    let summary =
        (bestow::jobs::schedule::by_function("gift-sweep").unwrap().run)(stack.app.clone(), now).await.unwrap();
    assert_eq!(summary["vendors"], 1);
}

#[tokio::test]
async fn a_whole_order_refund_of_many_units_and_a_refund_stripe_did_not_answer_settle_through_jobs() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "bigrefund").await;
    let (id, units) = split_order(&stack, &shop, 100).await;
    let refund = |body: Value| {
        stack
            .call(Method::POST, &format!("/vendors/bigrefund/orders/{id}/refunds"))
            .token(&shop.owner)
            .json(&body)
            .send()
    };

    // Stripe does not answer (three 500s): the refund stays pending, units held, and the
    // refund_request job asks again with the same idempotency key until Stripe answers.
    stack.stripe.fail_next(3, 500);
    let unanswered = refund(json!({"unit_numbers": [100]})).await;
    unanswered.assert_status(201);
    assert_eq!(unanswered.json["refunds"][0]["status"], "pending");
    let key = stack.stripe.requests().last().unwrap().idempotency_key.clone();
    let one = units[99]["amount_minor"].as_i64().unwrap();
    bestow_tests::eventually(60, "the retried refund to settle", async || {
        let order = shop.order(&stack, &id).await;
        (order["refunded_minor"] == one).then_some(())
    })
    .await;
    let asked: Vec<_> = stack.stripe.requests().into_iter().filter(|r| r.idempotency_key == key).collect();
    assert_eq!(asked.len(), 4, "three failures, then one answer");
    assert_eq!(stack.stripe.refunds().len(), 1);

    // The whole order: the 99 other units, in refunds of at most 94 units asked by jobs.
    let whole = refund(json!({"whole_order": true, "reason": "event cancelled"})).await;
    whole.assert_status(201);
    let parts = whole.json["refunds"].as_array().unwrap();
    let sizes: Vec<usize> = parts.iter().map(|r| r["unit_numbers"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [94, 5]);
    let total = shop.order(&stack, &id).await["totals"]["total_minor"].as_i64().unwrap();
    bestow_tests::eventually(60, "the whole order to be refunded", async || {
        let order = shop.order(&stack, &id).await;
        (order["refunded_minor"] == total).then_some(())
    })
    .await;
    let in_stripe: i64 = stack.stripe.refunds().iter().map(|r| r["amount"].as_i64().unwrap()).sum();
    assert_eq!(in_stripe, total, "every unit refunded once, to the minor unit");
    let listed = stack
        .call(Method::GET, &format!("/vendors/bigrefund/orders/{id}/units?limit=100"))
        .token(&shop.owner)
        .send()
        .await;
    assert!(listed.json["items"].as_array().unwrap().iter().all(|u| u["status"] == "cancelled"));
    refund(json!({"whole_order": true})).await.assert_problem(409);
}
