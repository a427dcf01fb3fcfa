//! Credentials: stored in Secrets Manager under the vendor's name, shown only as
//! `configured: true`, and never present in any response body or log line.

use bestow_tests::{Method, Stack, captured_logs};

use crate::support::configured_secret;
use serde_json::json;

#[tokio::test]
async fn credentials_reach_secrets_manager_and_nowhere_else() {
    let stack = Stack::start().await;
    let owner = stack.vendor("sec").await;
    let unique = bestow::store::ids::new_id();
    let smtp_password = format!("smtp-pass-{unique}");
    let stripe_key = format!("sk_test_{unique}");
    let webhook_secret = format!("whsec_{unique}");
    let secrets = [smtp_password.as_str(), stripe_key.as_str(), webhook_secret.as_str()];
    let mut bodies = Vec::new();

    let smtp = json!({"host": "smtp.sec.example", "port": 465, "username": "mailer", "password": smtp_password,
                      "from_email": "gifts@sec.example", "from_name": "Sec", "security": "tls"});
    let reply = stack.call(Method::PUT, "/vendors/sec/smtp").token(&owner).json(&smtp).send().await;
    reply.assert_status(200);
    assert_eq!(reply.json["password"], json!({"configured": true}));
    bodies.push(reply.text);

    let stripe =
        json!({"publishable_key": "pk_test_abcdefgh1234", "secret_key": stripe_key, "webhook_secret": webhook_secret});
    let reply = stack.call(Method::PUT, "/vendors/sec/stripe").token(&owner).json(&stripe).send().await;
    reply.assert_status(200);
    assert_eq!(reply.json["secret_key"], json!({"configured": true}));
    assert_eq!(reply.json["webhook_secret"], json!({"configured": true}));
    assert_eq!(reply.json["mode"], "test");
    let stripe_etag = reply.etag();
    bodies.push(reply.text);

    // A refused request that carries a secret does not echo it back.
    let bad = json!({"publishable_key": "pk_test_abcdefgh1234", "secret_key": format!("sk_live_{unique}"), "webhook_secret": format!("{webhook_secret}!")});
    let reply = stack
        .call(Method::PUT, "/vendors/sec/stripe")
        .token(&owner)
        .header("if-match", &stripe_etag)
        .json(&bad)
        .send()
        .await;
    reply.assert_problem(422);
    bodies.push(reply.text);

    for path in ["/vendors/sec/smtp", "/vendors/sec/stripe", "/vendors/sec"] {
        let reply = stack.call(Method::GET, path).token(&owner).send().await;
        reply.assert_status(200);
        bodies.push(reply.text);
    }

    // Updating without the secret keeps it; updating one Stripe secret keeps the other.
    let mut smtp_update = smtp.clone();
    smtp_update.as_object_mut().unwrap().remove("password");
    smtp_update["port"] = json!(2465);
    let etag = stack.call(Method::GET, "/vendors/sec/smtp").token(&owner).send().await.etag();
    let reply = stack
        .call(Method::PUT, "/vendors/sec/smtp")
        .token(&owner)
        .header("if-match", &etag)
        .json(&smtp_update)
        .send()
        .await;
    reply.assert_status(200);
    assert_eq!(reply.json["password"], json!({"configured": true}));
    let new_webhook = format!("whsec_rotated{unique}");
    let reply = stack
        .call(Method::PUT, "/vendors/sec/stripe")
        .token(&owner)
        .header("if-match", &stripe_etag)
        .json(&json!({"publishable_key": "pk_test_abcdefgh1234", "webhook_secret": new_webhook}))
        .send()
        .await;
    reply.assert_status(200);
    bodies.push(reply.text);

    // What Secrets Manager holds, under the vendor's own names, at the versions the
    // configuration names.
    let stored_smtp = configured_secret(&stack, "sec", "smtp").await;
    assert_eq!(stored_smtp["password"], smtp_password);
    let stored_stripe = configured_secret(&stack, "sec", "stripe").await;
    assert_eq!(stored_stripe["secret_key"], stripe_key, "the key not sent was kept");
    assert_eq!(stored_stripe["webhook_secret"], new_webhook);

    // Nothing in DynamoDB, responses or logs.
    let table_dump = format!("{:?}", stack.all_items().await);
    let logs = captured_logs();
    assert!(logs.contains("\"route\":\"smtp-put\""), "the logs were captured");
    for secret in secrets.iter().copied().chain([new_webhook.as_str()]) {
        assert!(!table_dump.contains(secret), "secret in the table");
        assert!(!logs.contains(secret), "secret in the logs");
        for body in &bodies {
            assert!(!body.contains(secret), "secret in a response: {body}");
        }
    }
    assert!(!logs.contains(&unique), "not even part of a secret reaches the logs");
}
