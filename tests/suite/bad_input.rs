//! Client mistakes: 4xx problem+json with a clear message, and nothing written.

use bestow_tests::{Method, Stack};
use serde_json::json;

use crate::support::{partition_snapshot, secret_versions, shipping_rules};

fn vendor_body(id: &str) -> serde_json::Value {
    json!({"id": id, "name": "Good", "contact_email": "a@b.example", "country": "DE", "currency": "EUR"})
}

#[tokio::test]
async fn malformed_wrong_typed_unknown_and_oversize_bodies_write_nothing() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    let create =
        |body: &str| stack.call(Method::POST, "/vendors").token(&admin).raw(body.to_owned(), "application/json");

    let reply = create("{\"id\": \"x\", \"name\": ").send().await;
    assert!(reply.assert_problem(400).ends_with("/malformed-request"));
    assert!(reply.json["detail"].as_str().unwrap().contains("not valid JSON"), "{}", reply.text);

    let mut wrong_type = vendor_body("typed");
    wrong_type["name"] = json!(42);
    let reply = create(&wrong_type.to_string()).send().await;
    assert!(reply.assert_problem(422).ends_with("/validation-failed"));
    assert!(reply.text.contains("invalid type"), "{}", reply.text);

    let mut unknown_field = vendor_body("typo");
    unknown_field["contact_emial"] = json!("x@y.example");
    create(&unknown_field.to_string()).send().await.assert_problem(422);

    let mut bad_country = vendor_body("nowhere");
    bad_country["country"] = json!("XX");
    bad_country["currency"] = json!("EURO");
    let reply = create(&bad_country.to_string()).send().await;
    reply.assert_problem(422);
    let pointers: Vec<&str> =
        reply.json["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, ["/country", "/currency"]);

    let mut bad_id = vendor_body("Bad#Id");
    bad_id["contact_email"] = json!("not-an-email");
    let reply = create(&bad_id.to_string()).send().await;
    reply.assert_problem(422);
    assert_eq!(reply.json["errors"].as_array().unwrap().len(), 2, "{}", reply.text);

    let oversize = json!({"id": "big", "name": "x".repeat(70 * 1024), "contact_email": "a@b.example", "country": "DE", "currency": "EUR"});
    create(&oversize.to_string()).send().await.assert_problem(413);
    stack
        .call(Method::POST, "/vendors")
        .token(&admin)
        .raw(vendor_body("plain").to_string(), "text/plain")
        .send()
        .await
        .assert_problem(415);
    create("").send().await.assert_problem(400);

    // None of these created anything.
    let list = stack.call(Method::GET, "/vendors").token(&admin).send().await;
    list.assert_status(200);
    assert_eq!(list.json["items"], json!([]), "{}", list.text);
    assert!(stack.all_items().await.is_empty());
}

#[tokio::test]
async fn invalid_configuration_is_refused_field_by_field_and_not_stored() {
    let stack = Stack::start().await;
    let owner = stack.vendor("cfg").await;
    let before = partition_snapshot(&stack, "cfg").await;

    let mut rules = shipping_rules();
    rules["zones"][0]["countries"][0] = json!("XX");
    rules["methods"][0]["rate"]["bands"][1]["amount_minor"] = json!(-5);
    rules["methods"][1]["zone_id"] = json!("mars");
    let reply = stack.call(Method::PUT, "/vendors/cfg/shipping").token(&owner).json(&rules).send().await;
    reply.assert_problem(422);
    let pointers: Vec<&str> =
        reply.json["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, ["/zones/0/countries/0", "/methods/0/rate/bands/1/amount_minor", "/methods/1/zone_id"]);

    let mut wrong_rate_kind = shipping_rules();
    wrong_rate_kind["methods"][0]["rate"]["type"] = json!("per_item");
    stack
        .call(Method::PUT, "/vendors/cfg/shipping")
        .token(&owner)
        .json(&wrong_rate_kind)
        .send()
        .await
        .assert_problem(422);

    // First SMTP configuration without a password: refused, no secret created.
    let smtp = json!({"host": "smtp.example.com", "port": 587, "username": "u", "from_email": "a@cfg.example", "from_name": "Cfg", "security": "starttls"});
    let reply = stack.call(Method::PUT, "/vendors/cfg/smtp").token(&owner).json(&smtp).send().await;
    reply.assert_problem(422);
    assert!(reply.text.contains("/password"), "{}", reply.text);

    let stripe = json!({"publishable_key": "pk_live_abcdefgh1234", "secret_key": "sk_test_abcdefgh1234", "webhook_secret": "whsec_abcdefgh1234"});
    let reply = stack.call(Method::PUT, "/vendors/cfg/stripe").token(&owner).json(&stripe).send().await;
    reply.assert_problem(422);
    assert!(reply.text.contains("same mode"), "{}", reply.text);

    let storage = json!({"bucket": "Not_A_Bucket", "prefix": "/../etc"});
    let reply = stack.call(Method::PUT, "/vendors/cfg/storage").token(&owner).json(&storage).send().await;
    reply.assert_problem(422);
    assert_eq!(reply.json["errors"].as_array().unwrap().len(), 2);

    stack
        .call(Method::POST, "/vendors/cfg/shipping/quote")
        .token(&owner)
        .json(&json!({"country": "Germany", "weight_grams": -1, "order_value_minor": 100}))
        .send()
        .await
        .assert_problem(422);

    assert_eq!(partition_snapshot(&stack, "cfg").await, before, "nothing was written");
    let prefix = &stack.app.config.secrets_prefix;
    assert_eq!(
        secret_versions(&stack, "cfg").await,
        [format!("{prefix}/vendors/cfg/smtp: absent"), format!("{prefix}/vendors/cfg/stripe: absent")],
        "no secret was created for a refused request"
    );
}

#[tokio::test]
async fn missing_or_wrong_credentials_and_roles_are_401_and_403() {
    let stack = Stack::start().await;
    let owner = stack.vendor("roles").await;

    // No token / a forged token: the authorizer answers, no function runs.
    let reply = stack.call(Method::GET, "/vendors/roles").send().await;
    assert_eq!(reply.status, 401);
    let forged = bestow_infra::devtoken::DevKeys::random()
        .issue(&bestow_infra::devtoken::DevUser { sub: "x", group: "platform_admin", vendor_id: None }, 60);
    assert_eq!(stack.call(Method::GET, "/vendors").token(&forged).send().await.status, 401);

    // A token without a Bestow role, or an ID token: the guard answers.
    let no_role =
        stack.keys.issue(&bestow_infra::devtoken::DevUser { sub: "x", group: "admins", vendor_id: Some("roles") }, 60);
    stack.call(Method::GET, "/vendors/roles").token(&no_role).send().await.assert_problem(403);
    let id_token = stack.keys.sign(&json!({"sub": "x", "cognito:groups": ["owner"], "custom:vendor_id": "roles",
        "token_use": "id", "scope": "bestow/api", "exp": 4102444800i64}));
    stack.call(Method::GET, "/vendors/roles").token(&id_token).send().await.assert_problem(401);

    // Roles per route.
    let fulfillment = stack.staff("roles", "fulfillment");
    let buyer = stack.staff("roles", "buyer");
    let manager = stack.staff("roles", "manager");
    stack
        .call(Method::PUT, "/vendors/roles/shipping")
        .token(&fulfillment)
        .json(&shipping_rules())
        .send()
        .await
        .assert_problem(403);
    stack.call(Method::GET, "/vendors/roles").token(&buyer).send().await.assert_problem(403);
    stack.call(Method::GET, "/vendors/roles/smtp").token(&fulfillment).send().await.assert_problem(403);
    stack
        .call(Method::PUT, "/vendors/roles/stripe")
        .token(&manager)
        .json(&json!({"publishable_key": "pk_test_abcdefgh1234"}))
        .send()
        .await
        .assert_problem(403);
    stack.call(Method::GET, "/vendors").token(&owner).send().await.assert_problem(403);
    stack
        .call(Method::POST, "/vendors/roles/suspend")
        .token(&owner)
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .assert_problem(403);
    stack.call(Method::GET, "/vendors/roles").token(&fulfillment).send().await.assert_status(200);
    stack
        .call(Method::PUT, "/vendors/roles/shipping")
        .token(&manager)
        .json(&shipping_rules())
        .send()
        .await
        .assert_status(200);
    stack
        .call(Method::POST, "/vendors/roles/shipping/quote")
        .token(&buyer)
        .json(&json!({"country": "DE", "weight_grams": 500, "order_value_minor": 2000}))
        .send()
        .await
        .assert_status(200);

    // Unknown routes are the gateway's 404.
    assert_eq!(stack.call(Method::DELETE, "/vendors/roles").token(&owner).send().await.status, 404);
}
