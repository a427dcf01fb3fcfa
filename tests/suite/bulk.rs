//! CSV imports and bulk updates as jobs, through the API.

use bestow::bulk::jobs::VariantBulkUpdate;
use bestow_tests::{Method, Reply, Stack, eventually};
use serde_json::{Value, json};

async fn finished(stack: &Stack, token: &str, accepted: &Reply) -> Value {
    accepted.assert_status(202);
    let location = accepted.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(accepted.json["status"], "queued");
    eventually(60, "the job to finish", async || {
        let job = stack.call(Method::GET, &location).token(token).send().await;
        (!matches!(job.json["status"].as_str(), Some("queued" | "running"))).then(|| job.json.clone())
    })
    .await
}

async fn import(stack: &Stack, vendor: &str, token: &str, csv: &str) -> Value {
    let accepted = stack
        .call(Method::POST, &format!("/vendors/{vendor}/imports"))
        .token(token)
        .raw(csv.as_bytes().to_vec(), "text/csv")
        .send()
        .await;
    finished(stack, token, &accepted).await
}

async fn product_by_handle(stack: &Stack, vendor: &str, token: &str, handle: &str) -> Value {
    let list = stack.call(Method::GET, &format!("/vendors/{vendor}/products?limit=100")).token(token).send().await;
    list.json["items"].as_array().unwrap().iter().find(|p| p["handle"] == handle).cloned().unwrap_or(Value::Null)
}

async fn variants(stack: &Stack, vendor: &str, token: &str, product: &Value) -> Vec<Value> {
    let path = format!("/vendors/{vendor}/products/{}/variants?limit=100", product["id"].as_str().unwrap());
    stack.call(Method::GET, &path).token(token).send().await.json["items"].as_array().unwrap().clone()
}

fn by_title<'a>(variants: &'a [Value], title: &str) -> &'a Value {
    variants.iter().find(|v| v["title"] == title).unwrap_or_else(|| panic!("no variant {title}"))
}

/// Every catalogue item of a vendor (products, variants, claims), rendered.
async fn catalogue_items(stack: &Stack, vendor: &str) -> Vec<String> {
    let prefixes = [format!("V#{vendor}#PRODUCT#"), format!("V#{vendor}#SKU#"), format!("V#{vendor}#HANDLE#")];
    let mut rows: Vec<String> = stack
        .all_items()
        .await
        .into_iter()
        .filter(|i| {
            i.get("PK").and_then(|v| v.as_s().ok()).is_some_and(|pk| prefixes.iter().any(|p| pk.starts_with(p)))
        })
        .map(|i| crate::support::render(&aws_sdk_dynamodb::types::AttributeValue::M(i)))
        .collect();
    rows.sort();
    rows
}

const FILE: &str = "handle,title,status,tags,option1_name,option1_value,option2_name,option2_value,sku,price_minor,stock_quantity,inventory_policy
hoodie,Hoodie,active,\"apparel,winter\",Size,S,Colour,Red,HD-S-RED,4500,10,deny
hoodie,,,,Size,M,Colour,Red,HD-M-RED,4500,5,
hoodie,,,,Size,S,Colour,Blue,HD-S-BLUE,4700,0,continue
hoodie,,,,Size,M,Colour,Blue,HD-M-BLUE,abc,1,
hoodie,,,,Size,L,Colour,Red,TAKEN-1,4500,1,
hoodie,,,,Size,S,Colour,Red,HD-DUP,1,1,
cap,Cap,active,winter,,,,,CAP-1,1500,20,
scarf,,,,,,,,SCARF-1,100,1,
\"mug,x\",Mug,,,,,,,,1,1,
";

#[tokio::test]
async fn a_csv_import_takes_the_good_rows_reports_the_bad_and_a_rerun_changes_nothing() {
    let stack = Stack::start().await;
    let owner = stack.vendor("importer").await;
    // Another product already holds the SKU one row asks for.
    let other = stack
        .call(Method::POST, "/vendors/importer/products")
        .token(&owner)
        .json(&json!({"title": "Other"}))
        .send()
        .await;
    let other_variant = &variants(&stack, "importer", &owner, &other.json).await[0];
    stack
        .call(
            Method::PATCH,
            &format!(
                "/vendors/importer/products/{}/variants/{}",
                other.json["id"].as_str().unwrap(),
                other_variant["id"].as_str().unwrap()
            ),
        )
        .token(&owner)
        .header("if-match", "\"v1\"")
        .json(&json!({"sku": "TAKEN-1"}))
        .send()
        .await
        .assert_status(200);

    let job = import(&stack, "importer", &owner, FILE).await;
    assert_eq!(job["status"], "completed_with_errors", "{job}");
    let lines: Vec<u64> = job["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [5, 6, 7, 9, 10], "{job:#}");
    assert_eq!(job["errors"][0]["pointer"], "/price_minor");
    assert!(job["errors"][1]["message"].as_str().unwrap().contains("TAKEN-1"));
    assert_eq!(job["result"]["products_created"], 2);
    assert_eq!(job["result"]["rows_imported"], 4);
    assert_eq!(job["failed"], 5);

    let hoodie = product_by_handle(&stack, "importer", &owner, "hoodie").await;
    assert_eq!(hoodie["tags"], json!(["apparel", "winter"]));
    let sizes: Vec<&str> =
        hoodie["options"][0]["values"].as_array().unwrap().iter().map(|v| v["value"].as_str().unwrap()).collect();
    assert_eq!(sizes, ["S", "M"], "nothing of the failed row L");
    let hv = variants(&stack, "importer", &owner, &hoodie).await;
    assert_eq!(hv.len(), 4);
    let s_red = by_title(&hv, "S / Red");
    assert_eq!(
        (s_red["sku"].as_str(), s_red["price_minor"].as_i64(), s_red["stock_quantity"].as_i64()),
        (Some("HD-S-RED"), Some(4500), Some(10))
    );
    let s_blue = by_title(&hv, "S / Blue");
    assert_eq!((s_blue["price_minor"].as_i64(), s_blue["inventory_policy"].as_str()), (Some(4700), Some("continue")));
    assert!(by_title(&hv, "M / Blue")["sku"].is_null(), "the failed row wrote nothing");
    let cap = product_by_handle(&stack, "importer", &owner, "cap").await;
    assert_eq!(variants(&stack, "importer", &owner, &cap).await[0]["sku"], "CAP-1");
    assert!(product_by_handle(&stack, "importer", &owner, "scarf").await.is_null());

    // The same file again: the same report, and not one catalogue item rewritten.
    let before = catalogue_items(&stack, "importer").await;
    let again = import(&stack, "importer", &owner, FILE).await;
    assert_eq!(again["errors"], job["errors"]);
    assert_eq!(again["result"]["products_created"], 0);
    assert_eq!(again["result"]["variants_updated"], 0);
    assert_eq!(catalogue_items(&stack, "importer").await, before);

    // A row may not move a SKU this product holds to a combination that does not exist yet:
    // refused before its new size could be added.
    let moved = import(
        &stack,
        "importer",
        &owner,
        "handle,option1_name,option1_value,option2_name,option2_value,sku\nhoodie,Size,XL,Colour,Red,HD-S-RED\n",
    )
    .await;
    assert_eq!(moved["errors"][0]["pointer"], "/sku", "{moved}");
    let hoodie = product_by_handle(&stack, "importer", &owner, "hoodie").await;
    assert_eq!(hoodie["options"][0]["values"].as_array().unwrap().len(), 2, "no XL");
    assert_eq!(catalogue_items(&stack, "importer").await, before);

    // A file that is no table is refused whole, before any job.
    let refused = stack
        .call(Method::POST, "/vendors/importer/imports")
        .token(&owner)
        .raw(b"handle,colour\nx,y\n".to_vec(), "text/csv")
        .send()
        .await;
    refused.assert_problem(422);
    stack
        .call(Method::POST, "/vendors/importer/imports")
        .token(&owner)
        .json(&json!({"a": 1}))
        .send()
        .await
        .assert_problem(415);
    assert!(stack.key_violations().await.is_empty());
}

#[tokio::test]
async fn bulk_updates_by_filter_and_by_list_apply_adjustments_once() {
    let stack = Stack::start().await;
    let owner = stack.vendor("bulker").await;
    let file = "handle,title,status,tags,option1_name,option1_value,sku,price_minor,stock_quantity
coat,Coat,active,winter,Size,S,COAT-S,10000,1
coat,,,,Size,M,COAT-M,10001,2
tee,Tee,active,summer,,,TEE-1,2000,7
";
    assert_eq!(import(&stack, "bulker", &owner, file).await["status"], "succeeded");

    let accepted = stack
        .call(Method::POST, "/vendors/bulker/variants/bulk")
        .token(&owner)
        .json(
            &json!({"filter": {"tag": "winter"}, "changes": {"price_adjustment_percent": -10, "stock_adjustment": 5}}),
        )
        .send()
        .await;
    let job = finished(&stack, &owner, &accepted).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["variants_changed"], 2);
    let coat = product_by_handle(&stack, "bulker", &owner, "coat").await;
    let prices = |vs: &[Value]| {
        vs.iter()
            .map(|v| (v["price_minor"].as_i64().unwrap(), v["stock_quantity"].as_i64().unwrap()))
            .collect::<Vec<_>>()
    };
    let after = variants(&stack, "bulker", &owner, &coat).await;
    assert_eq!(prices(&after), [(9000, 6), (9001, 7)], "10001 × 0.9 = 9000.9 rounds to 9001");
    let tee = product_by_handle(&stack, "bulker", &owner, "tee").await;
    assert_eq!(prices(&variants(&stack, "bulker", &owner, &tee).await), [(2000, 7)], "not tagged winter");

    // The same job run again (as a retry after a crash would): the adjustments are not
    // applied twice.
    let scope = bestow::tenancy::guard::job_scope("bulker", "variant_bulk_update").unwrap();
    let retry = VariantBulkUpdate {
        job_id: job["id"].as_str().unwrap().to_owned(),
        requested_by: "test-bulker-owner".into(),
        requested_by_role: "owner".into(),
    };
    bestow::bulk::service::run_bulk_update(&stack.app, &scope, &retry).await.unwrap();
    assert_eq!(prices(&variants(&stack, "bulker", &owner, &coat).await), [(9000, 6), (9001, 7)]);

    // By list: one SKU known, one not.
    let accepted = stack
        .call(Method::POST, "/vendors/bulker/variants/bulk")
        .token(&owner)
        .json(&json!({"items": [{"sku": "TEE-1", "stock_quantity": 3, "price_minor": 2500}, {"sku": "NOPE", "price_minor": 1}]}))
        .send()
        .await;
    let job = finished(&stack, &owner, &accepted).await;
    assert_eq!(job["status"], "completed_with_errors");
    assert_eq!(job["errors"][0]["pointer"], "/items/1");
    assert_eq!(prices(&variants(&stack, "bulker", &owner, &tee).await), [(2500, 3)]);

    // Bad requests are 422 and start nothing.
    for bad in [
        json!({"filter": {"tag": "x"}}),
        json!({"filter": {}, "changes": {}, "items": []}),
        json!({"items": [{"sku": "TEE-1", "product_id": "p", "variant_id": "v", "price_minor": 1}]}),
        json!({"filter": {"tag": "x"}, "changes": {"price_minor": 1, "price_adjustment_percent": 5}}),
        json!({"items": [{"sku": "TEE-1", "price_minor": 1}, {"sku": "TEE-1", "stock_quantity": 1}]}),
    ] {
        stack
            .call(Method::POST, "/vendors/bulker/variants/bulk")
            .token(&owner)
            .json(&bad)
            .send()
            .await
            .assert_problem(422);
    }
    let audit = stack.call(Method::GET, "/vendors/bulker/audit?limit=100").token(&owner).send().await;
    let bulk_entries =
        audit.json["items"].as_array().unwrap().iter().filter(|e| e["action"] == "variants.bulk_updated").count();
    assert_eq!(bulk_entries, 2, "one entry per product and job that changed something");
}
