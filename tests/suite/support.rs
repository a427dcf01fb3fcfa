//! Shared fixtures of the suite.

use aws_sdk_dynamodb::types::AttributeValue;
use bestow_tests::{Method, Stack};
use serde_json::{Value, json};

pub fn event(function: &str) -> Value {
    let path = bestow_infra::template::workspace_root().join("events").join(format!("{function}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The request body of a function's sample event (valid for its route), if it has one; a
/// body that is not JSON (an import's CSV) as a JSON string.
pub fn sample_body(function: &str) -> Option<Value> {
    event(function)["body"].as_str().map(|b| serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.to_owned())))
}

pub fn shipping_rules() -> Value {
    bestow_infra::seed::demo_shipping_rules()
}

/// Configures everything a vendor can configure, through the API.
pub async fn configure_fully(stack: &Stack, vendor: &str, owner: &str) {
    let base = format!("/vendors/{vendor}");
    stack
        .call(Method::PUT, &format!("{base}/shipping"))
        .token(owner)
        .json(&shipping_rules())
        .send()
        .await
        .assert_status(200);
    stack
        .call(Method::PUT, &format!("{base}/smtp"))
        .token(owner)
        .json(&json!({"host": "smtp.example.com", "port": 587, "username": vendor, "password": format!("pw-{vendor}"),
                      "from_email": format!("gifts@{vendor}.example"), "from_name": vendor, "security": "starttls"}))
        .send()
        .await
        .assert_status(200);
    stack
        .call(Method::PUT, &format!("{base}/stripe"))
        .token(owner)
        .json(&json!({"publishable_key": "pk_test_abcdefgh1234", "secret_key": "sk_test_abcdefgh1234", "webhook_secret": "whsec_abcdefgh1234"}))
        .send()
        .await
        .assert_status(200);
    stack
        .call(Method::PUT, &format!("{base}/storage"))
        .token(owner)
        .json(&json!({"bucket": "docs-bucket", "prefix": format!("vendors/{vendor}/")}))
        .send()
        .await
        .assert_status(200);
}

/// Every item of a vendor (its partition and its directory entry), rendered for comparison.
pub async fn partition_snapshot(stack: &Stack, vendor: &str) -> Vec<String> {
    let mut rows: Vec<String> = stack
        .all_items()
        .await
        .into_iter()
        .filter(|item| {
            let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            // The vendor's own partition, and its entry in the platform directory.
            s("vendor_id") == vendor || (s("PK") == "P#VENDORS" && s("SK") == format!("VENDOR#{vendor}"))
        })
        .map(|item| render(&AttributeValue::M(item)))
        .collect();
    rows.sort();
    rows
}

/// A canonical rendering of an attribute value: map keys sorted at every level.
pub fn render(value: &AttributeValue) -> String {
    match value {
        AttributeValue::M(map) => {
            let mut pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", render(v))).collect();
            pairs.sort();
            format!("{{{}}}", pairs.join(","))
        }
        AttributeValue::L(list) => format!("[{}]", list.iter().map(render).collect::<Vec<_>>().join(",")),
        other => format!("{other:?}"),
    }
}

/// Every version of every secret of a vendor, by name: changes when anything is written.
pub async fn secret_versions(stack: &Stack, vendor: &str) -> Vec<String> {
    let client = aws_sdk_secretsmanager::Client::new(&stack.sdk);
    let mut out = Vec::new();
    for integration in ["smtp", "stripe"] {
        let name = format!("{}/vendors/{vendor}/{integration}", stack.app.config.secrets_prefix);
        match client.describe_secret().secret_id(&name).send().await {
            Ok(described) => {
                let mut versions: Vec<String> =
                    described.version_ids_to_stages().unwrap_or(&Default::default()).keys().cloned().collect();
                versions.sort();
                out.push(format!("{name}: {versions:?}"));
            }
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                out.push(format!("{name}: absent"))
            }
            Err(err) => panic!("{name}: {err:?}"),
        }
    }
    out
}

/// The credentials a vendor's configuration points at (the version it names), as JSON.
pub async fn configured_secret(stack: &Stack, vendor: &str, integration: &str) -> Value {
    let (sk, field) = match integration {
        "smtp" => ("CONFIG#SMTP", "password"),
        _ => ("CONFIG#STRIPE", "secrets"),
    };
    let item = stack
        .app
        .table
        .client()
        .get_item()
        .table_name(&stack.names.table)
        .key("PK", AttributeValue::S(format!("V#{vendor}")))
        .key("SK", AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("{vendor} has no {sk}"));
    let version = item[field].as_m().unwrap()["version_id"].as_s().unwrap().clone();
    let name = format!("{}/vendors/{vendor}/{integration}", stack.app.config.secrets_prefix);
    let value = aws_sdk_secretsmanager::Client::new(&stack.sdk)
        .get_secret_value()
        .secret_id(name)
        .version_id(version)
        .send()
        .await
        .unwrap();
    serde_json::from_str(value.secret_string().unwrap()).unwrap()
}

/// A product with 100 variants (so made by the generation job) listed on a storefront of
/// `vendor`, and the ids routes take in their paths: `productId`, `variantId`, `jobId`,
/// `storefrontId`, `imageId`.
pub async fn catalog_ids(stack: &Stack, vendor: &str, owner: &str) -> std::collections::BTreeMap<&'static str, String> {
    let ten: Vec<Value> = (0..10).map(|i| json!({ "value": format!("v{i}") })).collect();
    let created = stack
        .call(Method::POST, &format!("/vendors/{vendor}/products"))
        .token(owner)
        .json(&json!({"title": format!("Fixture of {vendor}"), "options": [
            {"name": "One", "values": ten}, {"name": "Two", "values": ten}]}))
        .send()
        .await;
    created.assert_status(202);
    let product = created.json["id"].as_str().unwrap().to_owned();
    let job = created.json["variant_generation"]["job_id"].as_str().unwrap().to_owned();
    let job_path = format!("/vendors/{vendor}/jobs/{job}");
    bestow_tests::eventually(60, "the fixture's variants", async || {
        let reply = stack.call(Method::GET, &job_path).token(owner).send().await;
        (reply.json["status"] == "succeeded").then_some(())
    })
    .await;
    let variants = stack
        .call(Method::GET, &format!("/vendors/{vendor}/products/{product}/variants?limit=1"))
        .token(owner)
        .send()
        .await;
    let variant = variants.json["items"][0]["id"].as_str().unwrap().to_owned();
    let storefront = stack
        .call(Method::POST, &format!("/vendors/{vendor}/storefronts"))
        .token(owner)
        .json(&json!({"name": format!("Front of {vendor}"), "slug": format!("{vendor}-front")}))
        .send()
        .await;
    storefront.assert_status(201);
    let storefront = storefront.json["id"].as_str().unwrap().to_owned();
    stack
        .call(Method::PUT, &format!("/vendors/{vendor}/storefronts/{storefront}/products/{product}"))
        .token(owner)
        .json(&json!({"sort_order": 1}))
        .send()
        .await
        .assert_status(201);
    // An image record (its upload never happens: confirming it is a 409, not a 404).
    let image = stack
        .call(Method::POST, &format!("/vendors/{vendor}/products/{product}/images"))
        .token(owner)
        .json(&json!({"content_type": "image/png", "size_bytes": 100}))
        .send()
        .await;
    image.assert_status(201);
    let image = image.json["image"]["id"].as_str().unwrap().to_owned();
    // An order of the product (the vendor is configured by `configure_fully`): active, then bought.
    let product_path = format!("/vendors/{vendor}/products/{product}");
    let etag = stack.call(Method::GET, &product_path).token(owner).send().await.etag();
    stack
        .call(Method::PATCH, &product_path)
        .token(owner)
        .header("if-match", &etag)
        .json(&json!({"status": "active"}))
        .send()
        .await
        .assert_status(200);
    stack
        .call(Method::PATCH, &format!("{product_path}/variants/{variant}"))
        .token(owner)
        .header("if-match", "\"v1\"")
        .json(&json!({"stock_quantity": 5}))
        .send()
        .await
        .assert_status(200);
    let order = stack
        .call(Method::POST, &format!("/vendors/{vendor}/storefronts/{storefront}/orders"))
        .token(owner)
        .json(
            &json!({"items": [{"product_id": product, "variant_id": variant, "quantity": 1}], "sender_name": "Fixture",
            "recipients": [{"name": "Ana", "email": "ana@example.com", "shipping_method_id": "eu-standard",
                "address": {"line1": "Torstr. 1", "city": "Berlin", "postal_code": "10119", "country": "DE"}}]}),
        )
        .send()
        .await;
    order.assert_status(201);
    let order = order.json["order"]["id"].as_str().unwrap().to_owned();
    let manifest = stack
        .call(Method::POST, &format!("/vendors/{vendor}/manifests"))
        .token(owner)
        .json(&json!({"status": "ready"}))
        .send()
        .await;
    manifest.assert_status(202);
    let manifest = manifest.json["id"].as_str().unwrap().to_owned();
    // Done before the caller looks: the job writes the vendor's items.
    let manifest_path = format!("/vendors/{vendor}/manifests/{manifest}");
    bestow_tests::eventually(60, "the fixture's manifest", async || {
        let reply = stack.call(Method::GET, &manifest_path).token(owner).send().await;
        (reply.json["status"] == "succeeded").then_some(())
    })
    .await;
    // A closed cycle's statement: this month for one vendor, next month for the other, so
    // the two never share a cycle id (closed as the schedule would, once they are over).
    let next = if vendor.ends_with("-b") { 2 } else { 1 };
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(31 * next + 31);
    let in_cycle = time::OffsetDateTime::now_utc() + time::Duration::days(31 * (next - 1));
    let cycle = format!("{:04}-{:02}", in_cycle.year(), u8::from(in_cycle.month()));
    let scope = bestow::tenancy::guard::job_scope(vendor, "fixture").unwrap();
    bestow::billing::service::close_cycle(&stack.app, &scope, &cycle, later).await.expect("the fixture's statement");
    // The worker records the job's idempotency outcome just after the job resource.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    [
        ("productId", product),
        ("variantId", variant),
        ("jobId", job),
        ("storefrontId", storefront),
        ("imageId", image),
        ("orderId", order),
        ("manifestId", manifest),
        ("cycleId", cycle),
    ]
    .into()
}

/// A route's path with its placeholders filled in.
pub fn fill(path: &str, vendor: &str, ids: &std::collections::BTreeMap<&'static str, String>) -> String {
    ids.iter().fold(path.replace("{vendorId}", vendor), |p, (name, id)| p.replace(&format!("{{{name}}}"), id))
}
