//! The product and variation engine through the API: generation (inline and by job),
//! identity-preserving option changes, the variant limit, SKU and handle uniqueness, the
//! generation lock and the audit log.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use bestow_tests::{Method, Reply, Stack, eventually};
use serde_json::{Value, json};

fn values(texts: &[&str]) -> Value {
    Value::Array(texts.iter().map(|t| json!({ "value": t })).collect())
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:02}")).collect()
}

async fn create_product(stack: &Stack, vendor: &str, token: &str, body: Value) -> Reply {
    stack.call(Method::POST, &format!("/vendors/{vendor}/products")).token(token).json(&body).send().await
}

/// Waits for a job resource to finish and returns it.
async fn finished_job(stack: &Stack, vendor: &str, token: &str, job_id: &str) -> Value {
    let path = format!("/vendors/{vendor}/jobs/{job_id}");
    eventually(60, "the generation job to finish", async || {
        let job = stack.call(Method::GET, &path).token(token).send().await;
        job.assert_status(200);
        (!matches!(job.json["status"].as_str(), Some("queued" | "running"))).then(|| job.json.clone())
    })
    .await
}

/// Every variant of a product, page by page.
async fn all_variants(stack: &Stack, vendor: &str, token: &str, product: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/vendors/{vendor}/products/{product}/variants?limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = stack.call(Method::GET, &path).token(token).send().await;
        page.assert_status(200);
        out.extend(page.json["items"].as_array().unwrap().iter().cloned());
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return out,
        }
    }
}

fn active(variants: &[Value]) -> Vec<&Value> {
    variants.iter().filter(|v| v["status"] == "active").collect()
}

/// A variant's option values as option name → value text.
fn labels(variant: &Value) -> BTreeMap<String, String> {
    variant["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["option"].as_str().unwrap().to_owned(), o["value"].as_str().unwrap().to_owned()))
        .collect()
}

async fn product(stack: &Stack, vendor: &str, token: &str, id: &str) -> Reply {
    let reply = stack.call(Method::GET, &format!("/vendors/{vendor}/products/{id}")).token(token).send().await;
    reply.assert_status(200);
    reply
}

async fn patch_variant(stack: &Stack, vendor: &str, token: &str, variant: &Value, body: Value) -> Reply {
    let path = format!(
        "/vendors/{vendor}/products/{}/variants/{}",
        variant["product_id"].as_str().unwrap(),
        variant["id"].as_str().unwrap()
    );
    stack.call(Method::PATCH, &path).token(token).header("if-match", "\"v1\"").json(&body).send().await
}

#[tokio::test]
async fn three_options_generate_by_job_and_option_changes_keep_each_variants_data() {
    let stack = Stack::start().await;
    let owner = stack.vendor("tees").await;
    let sizes = numbered("S", 10);
    let colours = numbered("C", 10);
    let materials = numbered("M", 10);
    let refs = |v: &[String]| values(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let created = create_product(
        &stack,
        "tees",
        &owner,
        json!({
            "title": "Big Tee", "status": "active",
            "attributes": {"organic": {"type": "boolean", "value": true}, "launch": {"type": "date", "value": "2026-03-01"}},
            "options": [
                {"name": "Size", "values": refs(&sizes)},
                {"name": "Colour", "values": refs(&colours)},
                {"name": "Material", "values": refs(&materials)},
            ],
            "variant_defaults": {"price_minor": 1500, "weight_grams": 180, "inventory_policy": "deny"},
        }),
    )
    .await;
    created.assert_status(202);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let job_id = created.json["variant_generation"]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(created.json["handle"], "big-tee");

    let job = finished_job(&stack, "tees", &owner, &job_id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!((job["total"].as_u64(), job["processed"].as_u64()), (Some(1000), Some(1000)));
    assert_eq!(job["result"]["batch_write_calls"], 40, "1000 variants are 40 batches of 25: {job}");
    let p = product(&stack, "tees", &owner, &id).await;
    assert_eq!(p.json["variant_count"], 1000);
    assert!(p.json["variant_generation"].is_null());

    let variants = all_variants(&stack, "tees", &owner, &id).await;
    assert_eq!(variants.len(), 1000);
    let combos: std::collections::HashSet<_> =
        variants.iter().map(|v| v["title"].as_str().unwrap().to_owned()).collect();
    assert_eq!(combos.len(), 1000, "every combination exactly once");
    assert_eq!(variants[0]["title"], "S00 / C00 / M00", "first option outermost, in creation order");
    assert_eq!(variants[1]["title"], "S00 / C00 / M01");

    // Give three variants their own data.
    let find = |vs: &[Value], s: &str, c: &str, m: &str| -> Value {
        vs.iter()
            .find(|v| {
                let l = labels(v);
                l["Size"] == s && l["Colour"] == c && l["Material"] == m
            })
            .unwrap_or_else(|| panic!("no variant {s}/{c}/{m}"))
            .clone()
    };
    let marked = [("S03", "C00", "M05", 4100, 7), ("S09", "C09", "M09", 4200, 0), ("S01", "C01", "M01", 4300, 12)];
    for (s, c, m, price, stock) in marked {
        let v = find(&variants, s, c, m);
        let sku = format!("TEE-{s}-{c}-{m}");
        patch_variant(&stack, "tees", &owner, &v, json!({"price_minor": price, "stock_quantity": stock, "sku": sku}))
            .await
            .assert_status(200);
    }

    // One change of everything: rename C00 → Crimson, reverse the sizes, move Material first,
    // add a size (100 new variants) and remove colour C01 (archives its 100).
    let options = p.json["options"].as_array().unwrap().clone();
    let with_ids = |o: &Value| -> Vec<Value> {
        o["values"].as_array().unwrap().iter().map(|v| json!({"id": v["id"], "value": v["value"]})).collect()
    };
    let mut size_values = with_ids(&options[0]);
    size_values.reverse();
    size_values.push(json!({"value": "S10"}));
    let colour_values: Vec<Value> = with_ids(&options[1])
        .into_iter()
        .filter(|v| v["value"] != "C01")
        .map(|mut v| {
            if v["value"] == "C00" {
                v["value"] = json!("Crimson");
            }
            v
        })
        .collect();
    let put = json!({"options": [
        {"id": options[2]["id"], "name": "Material", "values": with_ids(&options[2])},
        {"id": options[0]["id"], "name": "Size", "values": size_values},
        {"id": options[1]["id"], "name": "Colour", "values": colour_values},
    ]});
    let changed = stack
        .call(Method::PUT, &format!("/vendors/tees/products/{id}/options"))
        .token(&owner)
        .header("if-match", &p.etag())
        .json(&put)
        .send()
        .await;
    changed.assert_status(202);
    let job =
        finished_job(&stack, "tees", &owner, changed.json["variant_generation"]["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["created"], 90, "one new size × 9 remaining colours × 10 materials: {job}");
    assert_eq!(job["result"]["archived"], 100);
    let p2 = product(&stack, "tees", &owner, &id).await;
    assert_eq!(p2.json["variant_count"], 11 * 9 * 10);

    let variants = all_variants(&stack, "tees", &owner, &id).await;
    assert_eq!(variants.len(), 1090, "archived variants stay");
    assert_eq!(active(&variants).len(), 990);
    let kept = find(&variants, "S03", "Crimson", "M05");
    assert_eq!((kept["price_minor"].as_i64(), kept["stock_quantity"].as_i64()), (Some(4100), Some(7)));
    assert_eq!(kept["sku"], "TEE-S03-C00-M05", "the rename kept the SKU");
    assert_eq!(kept["title"], "M05 / S03 / Crimson", "titles follow the new option order");
    let kept = find(&variants, "S09", "C09", "M09");
    assert_eq!((kept["price_minor"].as_i64(), kept["in_stock"].as_bool()), (Some(4200), Some(false)));
    let archived = find(&variants, "S01", "C01", "M01");
    assert_eq!(archived["status"], "archived");
    assert_eq!(archived["price_minor"], 4300, "archiving keeps the data");
    let fresh = find(&variants, "S10", "C05", "M00");
    assert_eq!((fresh["price_minor"].as_i64(), fresh["status"].as_str()), (Some(1500), Some("active")));
    let untouched = find(&variants, "S05", "C05", "M05");
    assert_eq!(untouched["price_minor"], 1500);

    // Regeneration is idempotent: the same option set again changes no variant.
    let again = stack
        .call(Method::PUT, &format!("/vendors/tees/products/{id}/options"))
        .token(&owner)
        .header("if-match", &p2.etag())
        .json(&json!({"options": p2.json["options"].as_array().unwrap().iter().map(|o| json!({"id": o["id"], "name": o["name"], "values": o["values"]})).collect::<Vec<_>>()}))
        .send()
        .await;
    again.assert_status(200);
    assert_eq!(again.json["variant_count"], 990);
    let after = all_variants(&stack, "tees", &owner, &id).await;
    assert_eq!(after, variants, "no variant was rewritten");

    // 2,049 combinations: refused before anything is written.
    let too_many = json!({"options": [
        {"name": "A", "values": values(&numbered("A", 683).iter().map(String::as_str).collect::<Vec<_>>())},
        {"name": "B", "values": values(&["x", "y", "z"])},
    ]});
    let version_before = again.etag();
    let refused = stack
        .call(Method::PUT, &format!("/vendors/tees/products/{id}/options"))
        .token(&owner)
        .header("if-match", &version_before)
        .json(&too_many)
        .send()
        .await;
    refused.assert_problem(422);
    assert!(refused.json["errors"][0]["message"].as_str().unwrap().contains("2049 variants"), "{}", refused.text);
    assert_eq!(product(&stack, "tees", &owner, &id).await.etag(), version_before, "nothing written");
    let refused =
        create_product(&stack, "tees", &owner, json!({"title": "Too big", "options": too_many["options"]})).await;
    refused.assert_problem(422);

    // Exactly 2,048 is allowed (and is a job).
    let biggest = create_product(
        &stack,
        "tees",
        &owner,
        json!({"title": "Biggest", "options": [
            {"name": "A", "values": values(&numbered("A", 64).iter().map(String::as_str).collect::<Vec<_>>())},
            {"name": "B", "values": values(&numbered("B", 32).iter().map(String::as_str).collect::<Vec<_>>())},
        ]}),
    )
    .await;
    biggest.assert_status(202);
    let job =
        finished_job(&stack, "tees", &owner, biggest.json["variant_generation"]["job_id"].as_str().unwrap()).await;
    assert_eq!((job["status"].as_str(), job["result"]["batch_write_calls"].as_u64()), (Some("succeeded"), Some(82)));
    assert!(stack.key_violations().await.is_empty());
}

#[tokio::test]
async fn small_products_generate_inline_and_edits_are_audited() {
    let stack = Stack::start().await;
    let owner = stack.vendor("mugs").await;
    let created = create_product(
        &stack,
        "mugs",
        &owner,
        json!({"title": "Mug", "options": [{"name": "Colour", "values": values(&["White", "Black"])}],
               "variant_defaults": {"price_minor": 900}}),
    )
    .await;
    created.assert_status(201);
    assert_eq!(created.json["variant_count"], 2);
    assert_eq!(created.json["currency"], "EUR", "the vendor's currency by default");
    assert_eq!(created.json["status"], "draft");
    let id = created.json["id"].as_str().unwrap().to_owned();
    let variants = all_variants(&stack, "mugs", &owner, &id).await;
    assert_eq!(variants.iter().map(|v| v["title"].as_str().unwrap()).collect::<Vec<_>>(), ["White", "Black"]);

    // Adding a value inline: one new variant, the others untouched.
    let options = &created.json["options"];
    let put = json!({"options": [{"id": options[0]["id"], "name": "Colour", "values": [
        {"id": options[0]["values"][1]["id"], "value": "Black"},
        {"id": options[0]["values"][0]["id"], "value": "White"},
        {"value": "Blue"},
    ]}]});
    let changed = stack
        .call(Method::PUT, &format!("/vendors/mugs/products/{id}/options"))
        .token(&owner)
        .header("if-match", &created.etag())
        .json(&put)
        .send()
        .await;
    changed.assert_status(200);
    assert_eq!(changed.json["variant_count"], 3);
    // The old ETag is stale now.
    stack
        .call(Method::PUT, &format!("/vendors/mugs/products/{id}/options"))
        .token(&owner)
        .header("if-match", &created.etag())
        .json(&put)
        .send()
        .await
        .assert_problem(412);
    // Unknown ids and empty options are 422 with pointers.
    let bad = stack
        .call(Method::PUT, &format!("/vendors/mugs/products/{id}/options"))
        .token(&owner)
        .header("if-match", &changed.etag())
        .json(&json!({"options": [{"id": "nope", "name": "Colour", "values": []}]}))
        .send()
        .await;
    bad.assert_problem(422);
    let pointers: Vec<_> =
        bad.json["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, ["/options/0/id", "/options/0/values"]);

    // Product details: handle uniqueness is the store's, typed attributes are checked.
    create_product(&stack, "mugs", &owner, json!({"title": "Mug"})).await.assert_problem(409);
    let bad = create_product(
        &stack,
        "mugs",
        &owner,
        json!({"title": "Cup", "attributes": {"Bad Name": {"type": "date", "value": "2026-13-01"}}}),
    )
    .await;
    bad.assert_problem(422);
    assert_eq!(bad.json["errors"].as_array().unwrap().len(), 2, "{}", bad.text);
    let renamed = stack
        .call(Method::PATCH, &format!("/vendors/mugs/products/{id}"))
        .token(&owner)
        .header("if-match", &changed.etag())
        .json(&json!({"handle": "classic-mug", "status": "active", "tags": ["kitchen"]}))
        .send()
        .await;
    renamed.assert_status(200);
    // The old handle is free again.
    create_product(&stack, "mugs", &owner, json!({"title": "Mug"})).await.assert_status(201);

    let audit = stack.call(Method::GET, "/vendors/mugs/audit?limit=10").token(&owner).send().await;
    audit.assert_status(200);
    let actions: Vec<_> =
        audit.json["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["product.created", "product.updated", "product.options_updated", "product.created"]);
    let update = &audit.json["items"][1];
    assert_eq!((update["before_version"].as_u64(), update["after_version"].as_u64()), (Some(2), Some(3)));
    assert_eq!(update["actor"], "test-mugs-owner");
    assert_eq!(
        audit.json["items"][2]["summary"],
        "1 variants created, 0 archived, 0 given a new option's value, 2 kept"
    );
    // Fulfilment staff read products but do not write them, and do not read the audit log.
    let packer = stack.staff("mugs", "fulfillment");
    stack.call(Method::GET, &format!("/vendors/mugs/products/{id}")).token(&packer).send().await.assert_status(200);
    create_product(&stack, "mugs", &packer, json!({"title": "Nope"})).await.assert_problem(403);
    stack.call(Method::GET, "/vendors/mugs/audit").token(&packer).send().await.assert_problem(403);
}

#[tokio::test]
async fn skus_are_unique_per_vendor_not_across_vendors() {
    let stack = Stack::start().await;
    let a = stack.vendor("sku-a").await;
    let b = stack.vendor("sku-b").await;
    let mut variants = Vec::new();
    for (vendor, token, title) in [("sku-a", &a, "One"), ("sku-a", &a, "Two"), ("sku-b", &b, "One")] {
        let p = create_product(&stack, vendor, token, json!({"title": title})).await;
        p.assert_status(201);
        let id = p.json["id"].as_str().unwrap();
        let v = all_variants(&stack, vendor, token, id).await;
        assert_eq!(v.len(), 1, "no options: one default variant");
        assert_eq!(v[0]["title"], "Default");
        variants.push(v[0].clone());
    }
    patch_variant(&stack, "sku-a", &a, &variants[0], json!({"sku": "GIFT-1"})).await.assert_status(200);
    let duplicate = patch_variant(&stack, "sku-a", &a, &variants[1], json!({"sku": "GIFT-1", "price_minor": 5})).await;
    let detail = duplicate.assert_problem(409);
    assert!(detail.ends_with("/conflict"));
    assert!(duplicate.json["detail"].as_str().unwrap().contains(variants[0]["product_id"].as_str().unwrap()));
    let second = all_variants(&stack, "sku-a", &a, variants[1]["product_id"].as_str().unwrap()).await;
    assert_eq!((second[0]["sku"].as_str(), second[0]["price_minor"].as_i64()), (None, Some(0)), "nothing written");
    // Another vendor may use the same SKU.
    patch_variant(&stack, "sku-b", &b, &variants[2], json!({"sku": "GIFT-1"})).await.assert_status(200);
    // Vendor B cannot reach vendor A's variant, by its own path or by A's.
    let path = format!(
        "/vendors/sku-b/products/{}/variants/{}",
        variants[0]["product_id"].as_str().unwrap(),
        variants[0]["id"].as_str().unwrap()
    );
    stack
        .call(Method::PATCH, &path)
        .token(&b)
        .header("if-match", "\"v2\"")
        .json(&json!({"sku": "X"}))
        .send()
        .await
        .assert_problem(404);
    let path = path.replace("/sku-b/", "/sku-a/");
    stack
        .call(Method::PATCH, &path)
        .token(&b)
        .header("if-match", "\"v2\"")
        .json(&json!({"sku": "X"}))
        .send()
        .await
        .assert_problem(404);
    // Moving the SKU frees it: variant 0 takes GIFT-2 (v2 → v3), then variant 1 can take GIFT-1.
    let path = path.replace("/sku-b/", "/sku-a/");
    stack
        .call(Method::PATCH, &path)
        .token(&a)
        .header("if-match", "\"v2\"")
        .json(&json!({"sku": "GIFT-2"}))
        .send()
        .await
        .assert_status(200);
    patch_variant(&stack, "sku-a", &a, &variants[1], json!({"sku": "GIFT-1"})).await.assert_status(200);
    // Uniqueness is the store's, not a read-then-write: eight variants racing for one new SKU,
    // one wins.
    let mut racers = Vec::new();
    for i in 0..8 {
        let p = create_product(&stack, "sku-a", &a, json!({"title": format!("Racer {i}")})).await;
        racers.push(all_variants(&stack, "sku-a", &a, p.json["id"].as_str().unwrap()).await.remove(0));
    }
    let replies = futures_util::future::join_all(
        racers.iter().map(|v| patch_variant(&stack, "sku-a", &a, v, json!({"sku": "RACE-1"}))),
    )
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
    // Bad values are 422 and name the field.
    let bad = stack
        .call(Method::PATCH, &path)
        .token(&a)
        .header("if-match", "\"v3\"")
        .json(&json!({"sku": " spaced ", "price_minor": -1}))
        .send()
        .await;
    bad.assert_problem(422);
    assert_eq!(bad.json["errors"].as_array().unwrap().len(), 2);
    assert!(stack.key_violations().await.is_empty());
}

#[tokio::test]
async fn a_running_generation_locks_the_products_variants() {
    let stack = Stack::start().await;
    let owner = stack.vendor("locked").await;
    let p = create_product(&stack, "locked", &owner, json!({"title": "Lamp"})).await;
    p.assert_status(201);
    let id = p.json["id"].as_str().unwrap().to_owned();
    let variant = all_variants(&stack, "locked", &owner, &id).await.remove(0);
    // A generation job holds the product (as a job between its 202 and its end would).
    stack
        .app
        .table
        .client()
        .update_item()
        .table_name(&stack.names.table)
        .key("PK", AttributeValue::S(format!("V#locked#PRODUCT#{id}")))
        .key("SK", AttributeValue::S("PRODUCT".into()))
        .update_expression("SET generation = :lock")
        .expression_attribute_values(
            ":lock",
            AttributeValue::M(
                [
                    ("job_id".to_owned(), AttributeValue::S("01jtestjob0000000000000000".into())),
                    ("options_revision".to_owned(), AttributeValue::N("2".into())),
                    ("started_at".to_owned(), AttributeValue::S(bestow::vendors::service::now_rfc3339())),
                ]
                .into(),
            ),
        )
        .send()
        .await
        .expect("lock");
    let refused = patch_variant(&stack, "locked", &owner, &variant, json!({"price_minor": 10})).await;
    assert!(refused.assert_problem(409).ends_with("/conflict"));
    assert!(refused.json["detail"].as_str().unwrap().contains("01jtestjob0000000000000000"));
    let shown = product(&stack, "locked", &owner, &id).await;
    assert_eq!(shown.json["variant_generation"]["job_id"], "01jtestjob0000000000000000");
    // While its job is queued, new options wait too.
    let scope = bestow::tenancy::guard::job_scope("locked", "variant_generation").unwrap();
    let records = bestow::jobs::records::JobRecords::new(&stack.app.table, &scope);
    let mut record = bestow::jobs::records::JobRecord::queued(
        &scope,
        "01jtestjob0000000000000000".into(),
        "variant_generation",
        None,
    );
    records.create(&record).await.unwrap();
    let put_options = async || {
        stack
            .call(Method::PUT, &format!("/vendors/locked/products/{id}/options"))
            .token(&owner)
            .header("if-match", &shown.etag())
            .json(&json!({"options": [{"name": "Colour", "values": [{"value": "Red"}]}]}))
            .send()
            .await
    };
    put_options().await.assert_problem(409);
    // Once the job has failed (its last try could not release the product), new options take
    // the product over, and the variants are writable again.
    record.status = bestow::jobs::records::JobStatus::Failed;
    records.finish(&record).await.unwrap();
    let taken = put_options().await;
    taken.assert_status(200);
    assert!(taken.json["variant_generation"].is_null());
    assert_eq!(taken.json["variant_count"], 1);
    let variant = all_variants(&stack, "locked", &owner, &id).await.remove(0);
    assert_eq!(variant["title"], "Red", "the default variant took the new option's first value");
    patch_variant(&stack, "locked", &owner, &variant, json!({"price_minor": 10})).await.assert_problem(412);
    let path = format!("/vendors/locked/products/{id}/variants/{}", variant["id"].as_str().unwrap());
    stack
        .call(Method::PATCH, &path)
        .token(&owner)
        .header("if-match", "\"v2\"")
        .json(&json!({"price_minor": 10}))
        .send()
        .await
        .assert_status(200);
}

#[tokio::test]
async fn images_upload_through_presigned_urls_and_show_on_storefronts() {
    let stack = Stack::start().await;
    let owner = stack.vendor("pics").await;
    let p = create_product(&stack, "pics", &owner, json!({"title": "Vase", "status": "active"})).await;
    let id = p.json["id"].as_str().unwrap().to_owned();
    let images = format!("/vendors/pics/products/{id}/images");
    let png: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    let created = stack
        .call(Method::POST, &images)
        .token(&owner)
        .json(&json!({"content_type": "image/png", "size_bytes": png.len(), "alt": "Front"}))
        .send()
        .await;
    created.assert_status(201);
    let image_id = created.json["image"]["id"].as_str().unwrap().to_owned();
    let key = created.json["image"]["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("vendors/pics/products/{id}/images/")), "{key}");
    assert_eq!(created.json["image"]["status"], "pending");

    // The browser's upload: PUT to the presigned URL with the given headers.
    let http = reqwest::Client::new();
    let upload = &created.json["upload"];
    let mut put = http.put(upload["url"].as_str().unwrap()).body(png.clone());
    for (name, value) in upload["headers"].as_object().unwrap() {
        if name != "content-length" {
            put = put.header(name, value.as_str().unwrap());
        }
    }
    assert!(put.send().await.unwrap().status().is_success());
    let confirm = format!("{images}/{image_id}/confirm");
    let ready = stack.call(Method::POST, &confirm).token(&owner).send().await;
    ready.assert_status(200);
    assert_eq!(ready.json["images"][0]["status"], "ready");

    // An image never uploaded, or uploaded with the wrong size, is not confirmed.
    let other = stack
        .call(Method::POST, &images)
        .token(&owner)
        .json(&json!({"content_type": "image/jpeg", "size_bytes": 10}))
        .send()
        .await;
    let other_confirm = format!("{images}/{}/confirm", other.json["image"]["id"].as_str().unwrap());
    stack.call(Method::POST, &other_confirm).token(&owner).send().await.assert_problem(409);
    let _ = http
        .put(other.json["upload"]["url"].as_str().unwrap())
        .header("content-type", "image/jpeg")
        .body(vec![1u8; 5])
        .send()
        .await;
    stack.call(Method::POST, &other_confirm).token(&owner).send().await.assert_problem(409);
    // Types and sizes are checked before anything is signed.
    let bad = stack
        .call(Method::POST, &images)
        .token(&owner)
        .json(&json!({"content_type": "application/pdf", "size_bytes": 20_000_000, "variant_ids": ["nope"]}))
        .send()
        .await;
    bad.assert_problem(422);
    assert_eq!(bad.json["errors"].as_array().unwrap().len(), 3, "{}", bad.text);

    // The storefront shows ready images only, at the asset base URL.
    let sf = stack
        .call(Method::POST, "/vendors/pics/storefronts")
        .token(&owner)
        .json(&json!({"name": "Pics", "slug": "pics-shop"}))
        .send()
        .await;
    let sf_id = sf.json["id"].as_str().unwrap();
    stack
        .call(Method::PUT, &format!("/vendors/pics/storefronts/{sf_id}/products/{id}"))
        .token(&owner)
        .json(&json!({}))
        .send()
        .await
        .assert_status(201);
    let public = stack.call(Method::GET, &format!("/storefronts/pics-shop/products/{id}")).send().await;
    public.assert_status(200);
    let shown = public.json["images"].as_array().unwrap();
    assert_eq!(shown.len(), 1, "{}", public.text);
    // The URL is the CDN's (locally the emulator's path-style address); the object behind it
    // holds the uploaded bytes.
    let (base, bucket) =
        (stack.app.config.asset_base_url.clone().unwrap(), stack.app.config.assets_bucket.clone().unwrap());
    assert_eq!(shown[0]["url"].as_str().unwrap(), format!("{base}/{key}"));
    let object = stack.app.s3().get_object().bucket(&bucket).key(key).send().await.expect("the uploaded object");
    assert_eq!(object.body.collect().await.unwrap().into_bytes().to_vec(), png);

    stack.call(Method::DELETE, &format!("{images}/{image_id}")).token(&owner).send().await.assert_status(204);
    let public = stack.call(Method::GET, &format!("/storefronts/pics-shop/products/{id}")).send().await;
    assert!(public.json["images"].as_array().unwrap().is_empty());
    assert!(stack.app.s3().head_object().bucket(&bucket).key(key).send().await.is_err(), "the object is deleted too");
}
