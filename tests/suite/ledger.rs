//! The vendor's ledger: money movements recorded once, with the change that makes them.

use bestow_tests::{Method, Stack};
use serde_json::json;

use crate::orders::{gift_shop, now, recipients};

#[tokio::test]
async fn a_paid_order_and_its_refund_are_recorded_once_and_add_up() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "books").await;
    let order = shop.order_for(&stack, recipients(3, "books")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let total = order["totals"]["total_minor"].as_i64().unwrap();
    let event = stack.stripe.succeed_payment(order["payment_intent_id"].as_str().unwrap()).unwrap();
    // Delivered twice: one entry.
    for _ in 0..2 {
        shop.deliver(&stack, event.to_string().as_bytes(), &shop.webhook_secret, now()).await.assert_status(200);
    }
    shop.wait_split(&stack, &id).await;
    let refund = stack
        .call(Method::POST, &format!("/vendors/books/orders/{id}/refunds"))
        .token(&shop.owner)
        .json(&json!({ "unit_numbers": [1] }))
        .send()
        .await;
    refund.assert_status(201);
    let refunded = shop.order(&stack, &id).await["refunded_minor"].as_i64().unwrap();
    assert!(refunded > 0, "the refund settled on Stripe's answer");

    let scope = bestow::tenancy::guard::job_scope("books", "test").unwrap();
    let ledger = bestow::ledger::repo::LedgerRepo::new(&stack.app.table, &scope);
    let entries = ledger.entries_between(ALL_TIME.0, ALL_TIME.1).await.unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let totals = bestow::ledger::model::totals(&entries).unwrap();
    let eur = &totals["EUR"];
    assert_eq!(eur.orders_minor, total);
    assert_eq!(eur.refunds_minor, -refunded);
    assert_eq!(eur.net_minor, total - refunded, "the ledger adds up to the minor unit");
    let stripe_refunded: i64 = stack.stripe.refunds().iter().map(|r| r["amount"].as_i64().unwrap()).sum();
    assert_eq!(-eur.refunds_minor, stripe_refunded, "and equals Stripe's records");
    // Another vendor's ledger is empty.
    let other = bestow::tenancy::guard::job_scope("books-other", "test").unwrap();
    let empty = bestow::ledger::repo::LedgerRepo::new(&stack.app.table, &other)
        .entries_between(ALL_TIME.0, ALL_TIME.1)
        .await
        .unwrap();
    assert!(empty.is_empty());
}

const ALL_TIME: (time::OffsetDateTime, time::OffsetDateTime) =
    (time::macros::datetime!(2000-01-01 0:00 UTC), time::macros::datetime!(2999-01-01 0:00 UTC));
