//! The demo tenant, created through the API itself (the same routes a platform admin and a
//! vendor owner would call), so the seed can never write what the API would refuse.

use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use serde_json::{Value, json};

use crate::InfraError;
use crate::demo;
use crate::devtoken::DevUser;
use crate::gateway::Gateway;

/// One JSON request through the gateway (no socket): status, headers and the JSON body.
pub async fn call(
    gateway: &Gateway,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Result<(u16, HeaderMap, Value), InfraError> {
    let mut headers = HeaderMap::new();
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| InfraError::Other(e.to_string()))?;
    headers.insert("authorization", auth);
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(tag) = if_match {
        headers.insert("if-match", HeaderValue::from_str(tag).map_err(|e| InfraError::Other(e.to_string()))?);
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let response = gateway.call(&method, path, &headers, body).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.map_err(|e| InfraError::Other(e.to_string()))?.to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, headers, value))
}

/// `already` is the status that means an earlier run got this far (409 for a create, 428
/// for a configuration that exists): the seed then carries on, so a crashed seed completes.
fn expect(step: &str, status: u16, want: u16, already: u16, body: &Value) -> Result<bool, InfraError> {
    match status {
        s if s == want => Ok(true),
        s if s == already => Ok(false),
        _ => Err(InfraError::Other(format!("seed step {step}: HTTP {status}: {body}"))),
    }
}

/// The demo vendor's shipping rules: two zones, three methods, every rate kind.
pub fn demo_shipping_rules() -> Value {
    json!({
        "currency": "EUR",
        "zones": [
            { "id": "eu", "name": "European Union", "countries": ["DE", "FR", "NL", "BE", "AT", "IT", "ES"] },
            { "id": "north-america", "name": "North America", "countries": ["US", "CA"] }
        ],
        "methods": [
            { "id": "eu-standard", "name": "Standard (3-5 days)", "zone_id": "eu",
              "rate": { "type": "weight", "bands": [ { "up_to_grams": 1000, "amount_minor": 490 }, { "up_to_grams": 5000, "amount_minor": 890 }, { "up_to_grams": 20000, "amount_minor": 1590 } ] },
              "free_over_minor": 10000 },
            { "id": "eu-express", "name": "Express (next day)", "zone_id": "eu",
              "rate": { "type": "order_value", "bands": [ { "up_to_minor": 5000, "amount_minor": 1490 }, { "up_to_minor": 1000000000, "amount_minor": 1990 } ] } },
            { "id": "na-flat", "name": "International flat", "zone_id": "north-america",
              "rate": { "type": "flat", "amount_minor": 2490 } }
        ]
    })
}

/// Creates the demo vendor and whatever part of its configuration is missing. Returns
/// whether the vendor itself was new.
pub async fn seed_demo(gateway: &Gateway, documents_bucket: &str) -> Result<bool, InfraError> {
    let keys = gateway.keys();
    let admin = keys.issue(&DevUser { sub: demo::PLATFORM_ADMIN, group: "platform_admin", vendor_id: None }, 600);
    let owner = keys.issue(&DevUser { sub: demo::OWNER, group: "owner", vendor_id: Some(demo::VENDOR_ID) }, 600);
    let vendor_path = format!("/vendors/{}", demo::VENDOR_ID);
    let (status, _, body) = call(
        gateway,
        &admin,
        Method::POST,
        "/vendors",
        Some(json!({
            "id": demo::VENDOR_ID,
            "name": "Demo Gifts",
            "legal_name": "Demo Gifts GmbH",
            "contact_email": "hello@demo-gifts.example",
            "country": "DE",
            "currency": "EUR",
            "timezone": "Europe/Berlin"
        })),
        None,
    )
    .await?;
    let created = expect("create vendor", status, 201, 409, &body)?;
    let (status, _, body) =
        call(gateway, &owner, Method::PUT, &format!("{vendor_path}/shipping"), Some(demo_shipping_rules()), None)
            .await?;
    expect("shipping rules", status, 200, 428, &body)?;
    let (status, _, body) = call(
        gateway,
        &owner,
        Method::PUT,
        &format!("{vendor_path}/smtp"),
        Some(json!({
            "host": "127.0.0.1", "port": 2525, "username": "demo-gifts", "password": "local-demo-smtp-password",
            "from_email": "gifts@demo-gifts.example", "from_name": "Demo Gifts", "security": "none"
        })),
        None,
    )
    .await?;
    expect("smtp settings", status, 200, 428, &body)?;
    let (status, _, body) = call(gateway, &owner, Method::PUT, &format!("{vendor_path}/stripe"), Some(json!({
        "publishable_key": "pk_test_localdemo000000", "secret_key": "sk_test_localdemo000000", "webhook_secret": "whsec_localdemo000000"
    })), None).await?;
    expect("stripe settings", status, 200, 428, &body)?;
    let (status, _, body) = call(
        gateway,
        &owner,
        Method::PUT,
        &format!("{vendor_path}/storage"),
        Some(json!({
            "bucket": documents_bucket
        })),
        None,
    )
    .await?;
    expect("storage settings", status, 200, 428, &body)?;
    seed_catalogue(gateway, &owner, &vendor_path).await?;
    Ok(created)
}

/// A storefront (`/storefronts/demo-berlin/products`) with two listed products, one with
/// options and a storefront discount, both with stock. Skipped when the storefront exists.
async fn seed_catalogue(gateway: &Gateway, owner: &str, vendor_path: &str) -> Result<(), InfraError> {
    let storefront = json!({"name": "Demo Gifts Berlin", "slug": "demo-berlin", "host": "gifts.demo-berlin.example",
        "branding": {"primary_color": "#114477", "accent_color": "#ffcc00", "tagline": "Gifts that land"}});
    let (status, _, body) =
        call(gateway, owner, Method::POST, &format!("{vendor_path}/storefronts"), Some(storefront), None).await?;
    if !expect("storefront", status, 201, 409, &body)? {
        return Ok(());
    }
    let storefront_id = body["id"].as_str().unwrap_or_default().to_owned();
    let products = [
        (
            json!({"title": "Organic Cotton Tee", "status": "active", "tags": ["apparel"],
                "attributes": {"material": {"type": "text", "value": "organic cotton"}},
                "options": [{"name": "Size", "values": [{"value": "S"}, {"value": "M"}, {"value": "L"}]},
                            {"name": "Colour", "values": [{"value": "Navy"}, {"value": "Sand"}]}],
                "variant_defaults": {"price_minor": 2500, "weight_grams": 200}}),
            json!({"title": "Winter Tee", "price_adjustment_percent": -10, "sort_order": 1}),
        ),
        (
            json!({"title": "Ceramic Mug", "status": "active", "tags": ["kitchen"],
                "variant_defaults": {"price_minor": 1490, "weight_grams": 450, "inventory_policy": "continue"}}),
            json!({"sort_order": 2}),
        ),
    ];
    for (product, listing) in products {
        let (status, _, created) =
            call(gateway, owner, Method::POST, &format!("{vendor_path}/products"), Some(product), None).await?;
        expect("product", status, 201, 201, &created)?;
        let product_id = created["id"].as_str().unwrap_or_default();
        let (_, _, variants) =
            call(gateway, owner, Method::GET, &format!("{vendor_path}/products/{product_id}/variants"), None, None)
                .await?;
        for (i, variant) in variants["items"].as_array().into_iter().flatten().enumerate() {
            let path =
                format!("{vendor_path}/products/{product_id}/variants/{}", variant["id"].as_str().unwrap_or_default());
            let sku = format!("{}-{}", created["handle"].as_str().unwrap_or_default().to_uppercase(), i + 1);
            let stock = json!({"sku": sku, "stock_quantity": 20 + i * 5});
            let (status, _, body) = call(gateway, owner, Method::PATCH, &path, Some(stock), Some("\"v1\"")).await?;
            expect("variant stock", status, 200, 200, &body)?;
        }
        let path = format!("{vendor_path}/storefronts/{storefront_id}/products/{product_id}");
        let (status, _, body) = call(gateway, owner, Method::PUT, &path, Some(listing), None).await?;
        expect("listing", status, 201, 201, &body)?;
    }
    Ok(())
}
