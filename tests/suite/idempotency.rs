//! `Idempotency-Key` on the POSTs that create: a retried request has one effect.

use std::sync::Arc;

use bestow_tests::{Method, Stack, eventually, mail_for, smtp_sink_settings};
use serde_json::json;

fn new_vendor() -> serde_json::Value {
    json!({"name": "Keyed", "contact_email": "a@keyed.example", "country": "DE", "currency": "EUR"})
}

#[tokio::test]
async fn a_retried_create_replays_the_first_response_and_creates_once() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    let create = |key: &str, body: &serde_json::Value| {
        stack.call(Method::POST, "/vendors").token(&admin).header("idempotency-key", key).json(body)
    };
    let first = create("onboard-keyed-1", &new_vendor()).send().await;
    first.assert_status(201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = create("onboard-keyed-1", &new_vendor()).send().await;
    again.assert_status(201);
    assert_eq!(again.json, first.json, "the same vendor, not a second one");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert_eq!(again.etag(), first.etag());

    let mut other = new_vendor();
    other["name"] = json!("Someone else");
    let reused = create("onboard-keyed-1", &other).send().await;
    assert!(reused.assert_problem(422).ends_with("/validation-failed"));
    assert!(reused.text.contains("different request"));

    // A client mistake is an answer too: replayed, not re-run.
    let bad = json!({"name": "", "contact_email": "x", "country": "XX", "currency": "EUR"});
    create("onboard-bad", &bad).send().await.assert_problem(422);
    let replayed = create("onboard-bad", &bad).send().await;
    replayed.assert_problem(422);
    assert_eq!(replayed.headers["idempotent-replayed"], "true");

    create(&"k".repeat(256), &new_vendor()).send().await.assert_problem(400);
    // Without a key, every POST creates.
    stack.call(Method::POST, "/vendors").token(&admin).json(&new_vendor()).send().await.assert_status(201);
    let listed = stack.call(Method::GET, "/vendors").token(&admin).send().await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 2, "{}", listed.text);
    assert!(stack.key_violations().await.is_empty());
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_vendor() {
    let stack = Arc::new(Stack::start().await);
    let attempts: Vec<_> = (0..6)
        .map(|_| {
            let stack = Arc::clone(&stack);
            tokio::spawn(async move {
                let admin = stack.admin();
                stack
                    .call(Method::POST, "/vendors")
                    .token(&admin)
                    .header("idempotency-key", "race-key")
                    .json(&new_vendor())
                    .send()
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for attempt in attempts {
        let reply = attempt.await.unwrap();
        match reply.status {
            201 => ids.push(reply.json["id"].as_str().unwrap().to_owned()),
            409 => assert!(reply.text.contains("still in progress")),
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every 201 names the same vendor: {ids:?}");
    let listed = stack.call(Method::GET, "/vendors").token(&stack.admin()).send().await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_retried_smtp_test_queues_one_job_and_keys_are_per_user() {
    let stack = Stack::start().await;
    let owner = stack.vendor("keyed-mail").await;
    stack
        .call(Method::PUT, "/vendors/keyed-mail/smtp")
        .token(&owner)
        .json(&smtp_sink_settings("keyed-mail", "pw"))
        .send()
        .await
        .assert_status(200);
    let send = |token: &str| {
        stack
            .call(Method::POST, "/vendors/keyed-mail/smtp/test")
            .token(token)
            .header("idempotency-key", "test-mail-1")
            .json(&json!({"to_email": "keyed@keyed-mail.example"}))
    };
    let first = send(&owner).send().await;
    first.assert_status(202);
    let again = send(&owner).send().await;
    assert_eq!(again.json["job_id"], first.json["job_id"]);
    eventually(20, "the test email", async || (mail_for("keyed@keyed-mail.example").len() == 1).then_some(())).await;
    // Another user's identical key is their own.
    let manager = stack.staff("keyed-mail", "manager");
    let theirs = send(&manager).send().await;
    theirs.assert_status(202);
    assert_ne!(theirs.json["job_id"], first.json["job_id"]);
    eventually(20, "the second email", async || (mail_for("keyed@keyed-mail.example").len() == 2).then_some(())).await;
}
