//! Real function binaries, started the way Lambda starts them, answer their sample events
//! from `events/` through the Lambda Runtime API: the binaries' wiring is proven, not only
//! the handlers'.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bestow_infra::gateway::Gateway;
use bestow_infra::runtime_api::invoke_once;
use bestow_infra::template::workspace_root;
use bestow_tests::Stack;

fn binary(function: &str) -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|_| workspace_root().join("target"));
    let path = target.join("debug").join(function);
    assert!(path.exists(), "{} is missing: `infra/bestow test` builds the function binaries first", path.display());
    path
}

#[tokio::test]
async fn function_binaries_answer_their_sample_events_through_the_runtime_api() {
    let stack = Stack::start().await;
    let gateway = Gateway::new(stack.app.clone(), stack.keys.clone(), bestow::routes::ALL);
    let documents = stack.names.bucket("DocumentsBucket").unwrap().to_owned();
    assert!(bestow_infra::seed::seed_demo(&gateway, &documents).await.unwrap(), "the demo vendor is new in this stack");

    let env: HashMap<String, String> = HashMap::from([
        ("BESTOW_TABLE".into(), stack.names.table.clone()),
        ("BESTOW_STAGE".into(), "test".into()),
        ("BESTOW_SECRETS_PREFIX".into(), stack.app.config.secrets_prefix.clone()),
    ]);
    let env = Arc::new(env);

    let get = invoke_once(&binary("vendors-get"), &env, crate::support::event("vendors-get"), Duration::from_secs(30))
        .await
        .unwrap();
    let answer = get.outcome.expect("vendors-get answered");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], "demo-gifts");
    assert_eq!(body["name"], "Demo Gifts");
    assert_eq!(answer["headers"]["etag"], "\"v1\"");
    assert!(get.init <= get.total);

    let quote =
        invoke_once(&binary("shipping-quote"), &env, crate::support::event("shipping-quote"), Duration::from_secs(30))
            .await
            .unwrap();
    let answer = quote.outcome.expect("shipping-quote answered");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert!(!body["options"].as_array().unwrap().is_empty(), "{body}");

    // A public route: no authorizer in the event; the seeded storefront resolves the vendor.
    let public = invoke_once(
        &binary("storefront-products-list"),
        &env,
        crate::support::event("storefront-products-list"),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let answer = public.outcome.expect("storefront-products-list answered");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let titles: Vec<&str> = body["items"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Winter Tee", "Ceramic Mug"], "{body}");
    assert_eq!(body["items"][0]["price_min_minor"], 2250, "the storefront's 10 % off");

    // Another vendor's id in the event: the binary's guard answers 404, as deployed.
    let mut foreign = crate::support::event("vendors-get");
    foreign["pathParameters"]["vendorId"] = "someone-else".into();
    foreign["rawPath"] = "/vendors/someone-else".into();
    let answer =
        invoke_once(&binary("vendors-get"), &env, foreign, Duration::from_secs(30)).await.unwrap().outcome.unwrap();
    assert_eq!(answer["statusCode"], 404, "{answer}");
}
