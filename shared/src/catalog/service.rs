//! Use cases of the catalogue: validation first, then one transaction (or, for large
//! variant generations, a transaction that takes the product's lock and a job that does the
//! rest).

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde_json::json;

use super::dto::*;
use super::jobs::VariantGeneration;
use super::model::*;
use super::repo::CatalogRepo;
use crate::app::App;
use crate::audit::model::AuditEntry;
use crate::audit::repo::AuditLog;
use crate::error::{ApiError, FieldError};
use crate::jobs::records::{JobRecord, JobRecords, JobStatus};
use crate::jobs::{Job, JobError};
use crate::store::{Cursor, StoreError, Versioned, ids};
use crate::storefronts::service::{refresh_listings, refresh_listings_of_product};
use crate::tenancy::TenantScope;
use crate::vendors::repo::VendorRepo;
use crate::vendors::service::now_rfc3339;

/// Variant writes done inside the request's own transaction (which also holds the product,
/// its handle claim and the audit entry, within DynamoDB's 100 items). Past this, a job.
pub const INLINE_VARIANT_WRITES: usize = 96;
/// The generation job reports progress after every this many variants.
const PROGRESS_EVERY: usize = 500;

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!("{what} {id} not found"))
}

/// A mirrored product is changed where it comes from; its listings (overrides) stay editable.
fn synced(product: &Product) -> Result<(), ApiError> {
    match product.synced_from() {
        Some(source) => Err(ApiError::Conflict(format!(
            "this product is synced from {source}: change it there, and the sync brings the change here"
        ))),
        None => Ok(()),
    }
}

fn locked(product: &Product) -> Option<ApiError> {
    product.generation.as_ref().map(|lock| {
        ApiError::Conflict(format!(
            "variant generation job {} is running for this product; retry when it has finished",
            lock.job_id
        ))
    })
}

fn resource(product_id: &str) -> String {
    format!("products/{product_id}")
}

pub async fn get_product(app: &App, scope: &TenantScope, product_id: &str) -> Result<Versioned<Product>, ApiError> {
    CatalogRepo::new(&app.table, scope).product(product_id).await?.ok_or_else(|| not_found("product", product_id))
}

pub async fn list_products(
    app: &App,
    scope: &TenantScope,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<ProductList, ApiError> {
    let (items, next) = CatalogRepo::new(&app.table, scope).products(limit, cursor.as_ref()).await?;
    let vendor = scope.vendor_id().as_str();
    Ok(ProductList {
        items: items.into_iter().map(|p| ProductResponse::new(p.value, vendor)).collect(),
        next_cursor: next.map(|c| c.encode()),
    })
}

/// Maps a failed product transaction whose item 0 is the product and item 1 (if any) the
/// handle claim.
async fn product_write_failed(
    repo: &CatalogRepo<'_>,
    err: StoreError,
    handle: &str,
    handle_index: Option<usize>,
) -> ApiError {
    match err {
        StoreError::TransactionConditionFailed { failed } if handle_index.is_some_and(|i| failed.contains(&i)) => {
            let owner = repo.handle_claim(handle).await.ok().flatten().map(|c| c.product_id).unwrap_or_default();
            ApiError::Conflict(format!("the handle {handle} is already used by product {owner}; choose another"))
        }
        StoreError::TransactionConditionFailed { failed } if failed.contains(&0) => ApiError::stale("product"),
        other => other.into(),
    }
}

pub async fn create_product(
    app: &App,
    scope: &TenantScope,
    req: CreateProductRequest,
) -> Result<(Versioned<Product>, Option<String>), ApiError> {
    let mut errors = Vec::new();
    let handle = req.handle.unwrap_or_else(|| handle_from_title(&req.title));
    let currency = match req.currency {
        Some(c) => c,
        None => VendorRepo::new(&app.table, scope).profile().await?.map(|v| v.value.currency).unwrap_or_default(),
    };
    if !crate::vendors::model::is_currency(&currency) {
        errors.push(FieldError::new("/currency", format!("{currency} is not a supported ISO 4217 currency")));
    }
    let options = match resolve_options(&[], req.options, &mut ids::new_id) {
        Ok(options) => options,
        Err(mut option_errors) => {
            errors.append(&mut option_errors);
            Vec::new()
        }
    };
    let now = now_rfc3339();
    let mut product = Product {
        id: ids::new_id(),
        handle,
        title: req.title.trim().to_owned(),
        description: req.description.unwrap_or_default(),
        status: req.status.unwrap_or(ProductStatus::Draft),
        tags: req.tags,
        attributes: req.attributes,
        options,
        currency,
        variant_defaults: req.variant_defaults,
        variant_count: 0,
        options_revision: 1,
        generation: None,
        images: Vec::new(),
        storefronts: Vec::new(),
        external: None,
        created_at: now.clone(),
        updated_at: now.clone(),
    };
    check_product(&product, &mut errors);
    ApiError::reject_if_any(errors)?;
    crate::plans::service::check_products(app, scope).await?;

    let repo = CatalogRepo::new(&app.table, scope);
    let plan = plan_generation(&product.options, &[]);
    let audit = AuditLog::new(&app.table, scope);
    let entry = AuditEntry::new(scope, "product.created", resource(&product.id)).versions(None, Some(1));
    let mut job = None;
    let mut items = Vec::new();
    if plan.writes() <= INLINE_VARIANT_WRITES {
        product.variant_count = plan.active_after() as u32;
        items.push(repo.put_product(&product, None)?);
        items.push(repo.claim_handle(&product.handle, &product.id)?);
        items.push(audit.transact_put(&entry.summary(plan.summary()))?);
        for (id, values) in ids::new_ids(plan.create.len()).into_iter().zip(plan.create) {
            items.push(repo.put_variant(&Variant::new(&product, id, values, &now), None)?);
        }
    } else {
        let job_id = ids::new_id();
        product.generation =
            Some(GenerationLock { job_id: job_id.clone(), options_revision: 1, started_at: now.clone() });
        let record = JobRecord::queued(scope, job_id.clone(), VariantGeneration::TYPE, Some(resource(&product.id)));
        items.push(repo.put_product(&product, None)?);
        items.push(repo.claim_handle(&product.handle, &product.id)?);
        items.push(
            audit
                .transact_put(&entry.summary(format!("{} variants to generate by job {job_id}", plan.create.len())))?,
        );
        items.push(JobRecords::new(&app.table, scope).transact_create(&record)?);
        job = Some(job_id);
    }
    if let Err(err) = repo.commit(items).await {
        return Err(product_write_failed(&repo, err, &product.handle, Some(1)).await);
    }
    let created = Versioned { value: product, version: 1 };
    if let Some(job_id) = &job {
        start_generation_job(app, scope, &created, job_id).await?;
    }
    Ok((created, job))
}

pub async fn update_product(
    app: &App,
    scope: &TenantScope,
    product_id: &str,
    expected: u64,
    req: UpdateProductRequest,
) -> Result<Versioned<Product>, ApiError> {
    let repo = CatalogRepo::new(&app.table, scope);
    let current = get_product(app, scope, product_id).await?;
    synced(&current.value)?;
    if current.version != expected {
        return Err(ApiError::stale("product"));
    }
    let mut product = current.value.clone();
    if let Some(title) = req.title {
        product.title = title.trim().to_owned();
    }
    if let Some(handle) = req.handle {
        product.handle = handle;
    }
    if let Some(description) = req.description {
        product.description = description;
    }
    if let Some(status) = req.status {
        product.status = status;
    }
    if let Some(tags) = req.tags {
        product.tags = tags;
    }
    if let Some(attributes) = req.attributes {
        product.attributes = attributes;
    }
    if let Some(defaults) = req.variant_defaults {
        product.variant_defaults = defaults;
    }
    let mut errors = Vec::new();
    check_product(&product, &mut errors);
    ApiError::reject_if_any(errors)?;
    product.updated_at = now_rfc3339();

    let mut items = vec![repo.put_product(&product, Some(expected))?];
    let handle_changed = product.handle != current.value.handle;
    if handle_changed {
        items.push(repo.claim_handle(&product.handle, &product.id)?);
        items.push(repo.release_handle(&current.value.handle, &product.id)?);
    }
    let entry =
        AuditEntry::new(scope, "product.updated", resource(product_id)).versions(Some(expected), Some(expected + 1));
    items.push(AuditLog::new(&app.table, scope).transact_put(&entry)?);
    if let Err(err) = repo.commit(items).await {
        return Err(product_write_failed(&repo, err, &product.handle, handle_changed.then_some(1)).await);
    }
    // Only the product's own fields changed: its cards are patched, its variants not read.
    let written = Versioned { value: product, version: expected + 1 };
    refresh_listings_of_product(app, scope, &written).await;
    Ok(written)
}

/// Replaces the product's option set and brings its variants in line: in the request's
/// transaction when at most [`INLINE_VARIANT_WRITES`] variants change, else by a job
/// (the second value is its id).
pub async fn put_options(
    app: &App,
    scope: &TenantScope,
    product_id: &str,
    expected: u64,
    req: PutOptionsRequest,
) -> Result<(Versioned<Product>, Option<String>), ApiError> {
    let repo = CatalogRepo::new(&app.table, scope);
    let current = get_product(app, scope, product_id).await?;
    synced(&current.value)?;
    if let Some(lock) = &current.value.generation
        && !lock_abandoned(app, scope, lock).await?
        && let Some(conflict) = locked(&current.value)
    {
        return Err(conflict);
    }
    if current.version != expected {
        return Err(ApiError::stale("product"));
    }
    let options =
        resolve_options(&current.value.options, req.options, &mut ids::new_id).map_err(ApiError::validation)?;
    let existing = repo.all_variants(product_id).await?;
    let plan = plan_generation(&options, &existing);
    let now = now_rfc3339();
    let mut product = current.value.clone();
    // No lock, or an abandoned one this change takes over.
    product.generation = None;
    product.options = options;
    product.options_revision += 1;
    product.updated_at = now.clone();
    let mut errors = Vec::new();
    check_product(&product, &mut errors);
    ApiError::reject_if_any(errors)?;
    let entry = AuditEntry::new(scope, "product.options_updated", resource(product_id))
        .versions(Some(expected), Some(expected + 1));
    let audit = AuditLog::new(&app.table, scope);

    if plan.writes() <= INLINE_VARIANT_WRITES {
        product.variant_count = plan.active_after() as u32;
        let mut items: Vec<TransactWriteItem> =
            vec![repo.put_product(&product, Some(expected))?, audit.transact_put(&entry.summary(plan.summary()))?];
        for changed in &plan.change {
            let mut variant = changed.value.clone();
            variant.updated_at = now.clone();
            items.push(repo.put_variant(&variant, Some(changed.version))?);
        }
        for (id, values) in ids::new_ids(plan.create.len()).into_iter().zip(plan.create) {
            items.push(repo.put_variant(&Variant::new(&product, id, values, &now), None)?);
        }
        return match repo.commit(items).await {
            Ok(()) => {
                refresh_listings(app, scope, &product).await;
                Ok((Versioned { value: product, version: expected + 1 }, None))
            }
            Err(StoreError::TransactionConditionFailed { failed }) if failed.contains(&0) => {
                Err(ApiError::stale("product"))
            }
            Err(StoreError::TransactionConditionFailed { .. }) => Err(ApiError::Conflict(
                "a variant changed while the options were applied; send the options again".into(),
            )),
            Err(other) => Err(other.into()),
        };
    }

    let job_id = ids::new_id();
    product.generation =
        Some(GenerationLock { job_id: job_id.clone(), options_revision: product.options_revision, started_at: now });
    let record = JobRecord::queued(scope, job_id.clone(), VariantGeneration::TYPE, Some(resource(product_id)));
    let items = vec![
        repo.put_product(&product, Some(expected))?,
        audit.transact_put(&entry.summary(format!("{} variant writes planned for job {job_id}", plan.writes())))?,
        JobRecords::new(&app.table, scope).transact_create(&record)?,
    ];
    if let Err(err) = repo.commit(items).await {
        return Err(product_write_failed(&repo, err, "", None).await);
    }
    let saved = Versioned { value: product, version: expected + 1 };
    start_generation_job(app, scope, &saved, &job_id).await?;
    Ok((saved, Some(job_id)))
}

/// A lock nobody will release: its job finished or failed without releasing it, never
/// existed (a crash between the lock and the enqueue), or its lease ran out. New options may
/// take such a product over; the old job, should it ever run, finds the lock not its own.
async fn lock_abandoned(app: &App, scope: &TenantScope, lock: &GenerationLock) -> Result<bool, ApiError> {
    if lock.expired_at(time::OffsetDateTime::now_utc().unix_timestamp()) {
        return Ok(true);
    }
    let record = JobRecords::new(&app.table, scope).get(&lock.job_id).await?;
    Ok(record.is_none_or(|r| matches!(r.value.status, JobStatus::Failed | JobStatus::Succeeded)))
}

/// Enqueues the job for a product whose lock names it. If the queue refuses, the lock is
/// released at once (the job record says why), so a product is never left locked by a job
/// that does not exist.
async fn start_generation_job(
    app: &App,
    scope: &TenantScope,
    product: &Versioned<Product>,
    job_id: &str,
) -> Result<(), ApiError> {
    let job = VariantGeneration {
        job_id: job_id.to_owned(),
        product_id: product.value.id.clone(),
        options_revision: product.value.options_revision,
        requested_by: scope.actor().user_id.clone(),
        requested_by_role: scope.actor().role.as_str().to_owned(),
    };
    if let Err(err) = app.jobs.enqueue(scope, &job).await {
        tracing::error!(error = %err, job_id, "could not enqueue the variant generation; releasing the product");
        let why = "the job could not be queued; send the options again";
        if let Err(release) = abandon_generation(app, scope, &job, why).await {
            tracing::error!(error = %release, job_id, "could not release the product either");
        }
        return Err(ApiError::internal(err));
    }
    Ok(())
}

// ---------------------------------------------------------------- variants

pub async fn list_variants(
    app: &App,
    scope: &TenantScope,
    product_id: &str,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<VariantList, ApiError> {
    let repo = CatalogRepo::new(&app.table, scope);
    let product = get_product(app, scope, product_id).await?;
    let (items, next) = repo.variants_page(product_id, limit, cursor.as_ref()).await?;
    Ok(VariantList {
        items: items.into_iter().map(|v| VariantResponse::new(&product.value.options, v.value)).collect(),
        next_cursor: next.map(|c| c.encode()),
    })
}

pub async fn update_variant(
    app: &App,
    scope: &TenantScope,
    product_id: &str,
    variant_id: &str,
    expected: u64,
    req: UpdateVariantRequest,
) -> Result<(Versioned<Variant>, Vec<ProductOption>), ApiError> {
    let repo = CatalogRepo::new(&app.table, scope);
    let product = get_product(app, scope, product_id).await?;
    let current = repo.variant(product_id, variant_id).await?.ok_or_else(|| not_found("variant", variant_id))?;
    synced(&product.value)?;
    if let Some(conflict) = locked(&product.value) {
        return Err(conflict);
    }
    if current.version != expected {
        return Err(ApiError::stale("variant"));
    }
    // An archived variant is read-only, except that it may give up its SKU for a new one.
    let only_clears_sku = matches!(req.sku, Some(None))
        && req.barcode.is_none()
        && req.price_minor.is_none()
        && req.compare_at_price_minor.is_none()
        && req.weight_grams.is_none()
        && req.stock_quantity.is_none()
        && req.inventory_policy.is_none()
        && req.attributes.is_none();
    if current.value.status == VariantStatus::Archived && !only_clears_sku {
        return Err(ApiError::Conflict(
            "the variant is archived (its option value was removed): it is read-only but may clear its sku".into(),
        ));
    }
    let mut variant = current.value.clone();
    if let Some(sku) = req.sku {
        variant.sku = sku;
    }
    if let Some(barcode) = req.barcode {
        variant.barcode = barcode;
    }
    if let Some(price) = req.price_minor {
        variant.price_minor = price;
    }
    if let Some(compare) = req.compare_at_price_minor {
        variant.compare_at_price_minor = compare;
    }
    if let Some(weight) = req.weight_grams {
        variant.weight_grams = weight;
    }
    if let Some(stock) = req.stock_quantity {
        variant.stock_quantity = stock;
    }
    if let Some(policy) = req.inventory_policy {
        variant.inventory_policy = policy;
    }
    if let Some(attributes) = req.attributes {
        variant.attributes = attributes;
    }
    let mut errors = Vec::new();
    check_variant(&variant, &mut errors);
    ApiError::reject_if_any(errors)?;
    variant.updated_at = now_rfc3339();

    let mut items = vec![repo.put_variant(&variant, Some(expected))?, repo.check_unlocked(product_id)?];
    let mut claim_index = None;
    if variant.sku != current.value.sku {
        if let Some(sku) = &variant.sku {
            claim_index = Some(items.len());
            items.push(repo.claim_sku(sku, &variant)?);
        }
        if let Some(old) = &current.value.sku {
            items.push(repo.release_sku(old, variant_id)?);
        }
    }
    let entry = AuditEntry::new(scope, "variant.updated", format!("products/{product_id}/variants/{variant_id}"))
        .versions(Some(expected), Some(expected + 1));
    items.push(AuditLog::new(&app.table, scope).transact_put(&entry)?);
    match repo.commit(items).await {
        Ok(()) => {
            refresh_listings(app, scope, &product.value).await;
            Ok((Versioned { value: variant, version: expected + 1 }, product.value.options))
        }
        Err(StoreError::TransactionConditionFailed { failed }) => {
            if let (Some(i), Some(sku)) = (claim_index, &variant.sku)
                && failed.contains(&i)
            {
                let holder = repo.sku_claim(sku).await?;
                let at = holder
                    .map_or_else(String::new, |h| format!(" by product {} (variant {})", h.product_id, h.variant_id));
                return Err(ApiError::Conflict(format!(
                    "the SKU {sku} is already used{at}; SKUs are unique per vendor"
                )));
            }
            if failed.contains(&1) {
                return Err(ApiError::Conflict(
                    "a variant generation started for this product; retry when it has finished".into(),
                ));
            }
            Err(ApiError::stale("variant"))
        }
        Err(other) => Err(other.into()),
    }
}

// ---------------------------------------------------------------- the generation job

fn retryable(err: StoreError) -> JobError {
    JobError::Retryable(err.to_string())
}

/// Runs a generation job: plans from the product's options and its variants as stored now
/// (so a retry after a crash only writes what is missing), writes ⌈n/25⌉ batches, then
/// releases the product's lock with its new variant count and records the audit entry.
pub async fn run_generation(
    app: &App,
    scope: &TenantScope,
    job: &VariantGeneration,
) -> Result<serde_json::Value, JobError> {
    let repo = CatalogRepo::new(&app.table, scope);
    let records = JobRecords::new(&app.table, scope);
    let Some(product) = repo.product(&job.product_id).await.map_err(retryable)? else {
        return Err(JobError::Permanent(format!("product {} no longer exists", job.product_id)));
    };
    if product.value.generation.as_ref().is_none_or(|lock| lock.job_id != job.job_id) {
        // Released already: by this job, whose record may still say running if the try that
        // released it died before finishing it; or abandoned after a failure (record failed).
        if let Some(record) = records.get(&job.job_id).await.map_err(retryable)?
            && matches!(record.value.status, JobStatus::Queued | JobStatus::Running)
        {
            let mut done = record.value;
            done.status = JobStatus::Succeeded;
            records.finish(&done).await.map_err(retryable)?;
        }
        return Ok(json!({ "skipped": "the product is not locked by this job" }));
    }
    records.progress(&job.job_id, JobStatus::Running, 0, 0, 0).await.map_err(retryable)?;
    let actor = Actor { user: &job.requested_by, role: &job.requested_by_role };
    let Some(generated) = generate_locked(app, scope, product, &job.job_id, actor, Some(&records)).await? else {
        return Ok(json!({ "skipped": "the product's lock was released by someone else" }));
    };
    let mut record = JobRecord::queued(scope, job.job_id.clone(), VariantGeneration::TYPE, None);
    record.status = JobStatus::Succeeded;
    (record.total, record.processed, record.result) =
        (generated.writes, generated.writes, Some(generated.result.clone()));
    records.finish(&record).await.map_err(retryable)?;
    Ok(generated.result)
}

/// Who a job acts for: the audit entries it writes name them.
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    pub user: &'a str,
    pub role: &'a str,
}

pub struct Generated {
    pub result: serde_json::Value,
    /// The product as released (its new version).
    pub product: Versioned<Product>,
    pub writes: u64,
}

/// Brings a locked product's variants in line with its options and releases the lock (held by
/// `job_id`): the body of the generation job, and of an import that creates or extends a
/// product. Reports progress on `progress`'s record when given. `None` when the lock was
/// taken from the job meanwhile (abandoned after a failure).
pub async fn generate_locked(
    app: &App,
    scope: &TenantScope,
    mut product: Versioned<Product>,
    job_id: &str,
    actor: Actor<'_>,
    progress: Option<&JobRecords<'_>>,
) -> Result<Option<Generated>, JobError> {
    let repo = CatalogRepo::new(&app.table, scope);
    let product_id = product.value.id.clone();
    let existing = repo.all_variants(&product_id).await.map_err(retryable)?;
    let plan = plan_generation(&product.value.options, &existing);
    let now = now_rfc3339();
    let mut writes: Vec<Versioned<Variant>> = Vec::with_capacity(plan.writes());
    for changed in &plan.change {
        let mut variant = changed.clone();
        variant.value.updated_at = now.clone();
        writes.push(variant);
    }
    for (id, values) in ids::new_ids(plan.create.len()).into_iter().zip(plan.create.iter().cloned()) {
        writes.push(Versioned { value: Variant::new(&product.value, id, values, &now), version: 0 });
    }
    let total = writes.len() as u64;
    let mut done = 0u64;
    let mut batch_calls = 0u32;
    for chunk in writes.chunks(PROGRESS_EVERY) {
        batch_calls += repo.batch_put_variants(chunk).await.map_err(retryable)?;
        done += chunk.len() as u64;
        if let Some(records) = progress {
            records.progress(job_id, JobStatus::Running, total, done, 0).await.map_err(retryable)?;
        }
    }
    let result = json!({
        "created": plan.create.len(),
        "archived": plan.archived,
        "changed": plan.change.len() - plan.archived,
        "kept": plan.kept,
        "active_variants": plan.active_after(),
        "batch_write_calls": batch_calls,
    });
    // Release the lock. The product may have been edited meanwhile (title, status): re-read
    // and try again, the lock itself is only ever removed by its job.
    let entry =
        AuditEntry::by(actor.user, actor.role, "variants.generated", resource(&product_id)).summary(plan.summary());
    for attempt in 0..5 {
        if attempt > 0 {
            product = match repo.product(&product_id).await.map_err(retryable)? {
                Some(p) if p.value.generation.as_ref().is_some_and(|l| l.job_id == job_id) => p,
                _ => return Ok(None),
            };
        }
        let mut released = product.value.clone();
        released.generation = None;
        released.variant_count = plan.active_after() as u32;
        released.updated_at = now_rfc3339();
        let entry = entry.clone().versions(Some(product.version), Some(product.version + 1));
        let items = vec![
            repo.put_product(&released, Some(product.version)).map_err(retryable)?,
            AuditLog::new(&app.table, scope).transact_put(&entry).map_err(retryable)?,
        ];
        match repo.commit(items).await {
            Ok(()) => {
                refresh_listings(app, scope, &released).await;
                let product = Versioned { value: released, version: product.version + 1 };
                return Ok(Some(Generated { result, product, writes: total }));
            }
            Err(StoreError::TransactionConditionFailed { .. }) => continue,
            Err(other) => return Err(retryable(other)),
        }
    }
    Err(JobError::Retryable("the product kept changing while its lock was released".into()))
}

/// Gives up a generation: releases the product's lock (if this job still holds it) and marks
/// the job failed. The variants written so far stay; sending the options again finishes them.
pub async fn abandon_generation(
    app: &App,
    scope: &TenantScope,
    job: &VariantGeneration,
    why: &str,
) -> Result<(), StoreError> {
    let repo = CatalogRepo::new(&app.table, scope);
    // The product may be edited meanwhile (a PATCH of its title): read again and retry.
    for _ in 0..5 {
        let Some(product) = repo.product(&job.product_id).await? else { break };
        if product.value.generation.as_ref().is_none_or(|l| l.job_id != job.job_id) {
            break;
        }
        let mut released = product.value.clone();
        released.generation = None;
        released.updated_at = now_rfc3339();
        let entry = AuditEntry::by(
            &job.requested_by,
            &job.requested_by_role,
            "variants.generation_abandoned",
            resource(&job.product_id),
        )
        .versions(Some(product.version), Some(product.version + 1))
        .summary(why.to_owned());
        let items = vec![
            repo.put_product(&released, Some(product.version))?,
            AuditLog::new(&app.table, scope).transact_put(&entry)?,
        ];
        match repo.commit(items).await {
            Err(StoreError::TransactionConditionFailed { .. }) => continue,
            other => {
                other?;
                break;
            }
        }
    }
    let mut record = JobRecord::queued(scope, job.job_id.clone(), VariantGeneration::TYPE, None);
    record.status = JobStatus::Failed;
    record.failure =
        Some(format!("{why}; the variants may be incomplete: send the product's options again to finish them"));
    JobRecords::new(&app.table, scope).finish(&record).await
}

// ---------------------------------------------------------------- images

/// How long an upload URL is valid.
const UPLOAD_URL_SECONDS: u64 = 900;

fn assets_bucket(app: &App) -> Result<&str, ApiError> {
    app.config
        .assets_bucket
        .as_deref()
        .ok_or_else(|| ApiError::internal("BESTOW_ASSETS_BUCKET is not set for this function"))
}

/// Saves a product changed by an image operation (conditioned on the version read), with its
/// audit entry.
async fn save_images(
    app: &App,
    scope: &TenantScope,
    current: &Versioned<Product>,
    product: &Product,
    action: &str,
) -> Result<u64, ApiError> {
    let repo = CatalogRepo::new(&app.table, scope);
    let entry = AuditEntry::new(scope, action, resource(&product.id))
        .versions(Some(current.version), Some(current.version + 1));
    let items =
        vec![repo.put_product(product, Some(current.version))?, AuditLog::new(&app.table, scope).transact_put(&entry)?];
    match repo.commit(items).await {
        Ok(()) => Ok(current.version + 1),
        Err(StoreError::TransactionConditionFailed { .. }) => {
            Err(ApiError::Conflict("the product changed meanwhile; try again".into()))
        }
        Err(other) => Err(other.into()),
    }
}

/// Records a pending image on the product and presigns its upload: a PUT of exactly the
/// declared type and size, under the vendor's prefix of the assets bucket.
pub async fn create_image(
    app: &App,
    scope: &TenantScope,
    product_id: &str,
    req: CreateImageRequest,
) -> Result<ImageUpload, ApiError> {
    let bucket = assets_bucket(app)?;
    let current = get_product(app, scope, product_id).await?;
    let mut errors = Vec::new();
    let extension = IMAGE_TYPES.iter().find(|(t, _)| *t == req.content_type).map(|(_, ext)| *ext);
    if extension.is_none() {
        let allowed = IMAGE_TYPES.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ");
        errors.push(FieldError::new("/content_type", format!("must be one of {allowed}")));
    }
    if !(1..=MAX_IMAGE_BYTES).contains(&req.size_bytes) {
        errors.push(FieldError::new("/size_bytes", format!("must be 1..={MAX_IMAGE_BYTES} bytes")));
    }
    if req.alt.as_ref().is_some_and(|a| a.chars().count() > 512) {
        errors.push(FieldError::new("/alt", "must be at most 512 characters"));
    }
    if current.value.images.len() >= MAX_IMAGES {
        errors.push(FieldError::new("", format!("a product has at most {MAX_IMAGES} images")));
    }
    if !req.variant_ids.is_empty() {
        let variants = CatalogRepo::new(&app.table, scope).all_variants(product_id).await?;
        for (i, id) in req.variant_ids.iter().enumerate() {
            if !variants.iter().any(|v| &v.value.id == id) {
                errors.push(FieldError::new(format!("/variant_ids/{i}"), format!("the product has no variant {id}")));
            }
        }
    }
    ApiError::reject_if_any(errors)?;
    let id = ids::new_id();
    let prefix = crate::store::keys::vendor_object_prefix(scope);
    let key = format!("{prefix}products/{product_id}/images/{id}.{}", extension.unwrap_or("bin"));
    let image = ProductImage {
        id,
        key: key.clone(),
        content_type: req.content_type.clone(),
        size_bytes: req.size_bytes,
        alt: req.alt,
        variant_ids: req.variant_ids,
        status: ImageStatus::Pending,
        created_at: now_rfc3339(),
    };
    let expires = std::time::Duration::from_secs(UPLOAD_URL_SECONDS);
    let presigning = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires).map_err(ApiError::internal)?;
    let presigned = app
        .s3()
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type(&req.content_type)
        .content_length(req.size_bytes as i64)
        .presigned(presigning)
        .await
        .map_err(|e| ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let mut product = current.value.clone();
    product.images.push(image.clone());
    product.updated_at = now_rfc3339();
    save_images(app, scope, &current, &product, "product.image_added").await?;
    let expires_at = time::OffsetDateTime::now_utc() + expires;
    let mut headers: std::collections::BTreeMap<String, String> =
        presigned.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    headers.insert("content-type".into(), req.content_type);
    headers.insert("content-length".into(), req.size_bytes.to_string());
    Ok(ImageUpload {
        image,
        upload: UploadInstructions {
            method: "PUT".into(),
            url: presigned.uri().to_owned(),
            headers,
            expires_at: expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        },
    })
}

/// Marks an image ready once its object exists with the declared type and size.
pub async fn confirm_image(
    app: &App,
    scope: &TenantScope,
    product_id: &str,
    image_id: &str,
) -> Result<Versioned<Product>, ApiError> {
    let bucket = assets_bucket(app)?;
    let current = get_product(app, scope, product_id).await?;
    let image =
        current.value.images.iter().find(|i| i.id == image_id).cloned().ok_or_else(|| not_found("image", image_id))?;
    if image.status == ImageStatus::Ready {
        return Ok(current);
    }
    let head = match app.s3().head_object().bucket(bucket).key(&image.key).send().await {
        Ok(head) => head,
        // Without s3:ListBucket, S3 answers a missing key with 403 rather than 404.
        Err(err)
            if err.as_service_error().is_some_and(|e| e.is_not_found())
                || err.raw_response().is_some_and(|r| r.status().as_u16() == 403) =>
        {
            return Err(ApiError::Conflict("the image has not been uploaded yet".into()));
        }
        Err(err) => return Err(ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(err))),
    };
    if head.content_length() != Some(image.size_bytes as i64)
        || head.content_type() != Some(image.content_type.as_str())
    {
        return Err(ApiError::Conflict(format!(
            "the uploaded object is not the declared {} of {} bytes; upload it again",
            image.content_type, image.size_bytes
        )));
    }
    let mut product = current.value.clone();
    if let Some(found) = product.images.iter_mut().find(|i| i.id == image_id) {
        found.status = ImageStatus::Ready;
    }
    product.updated_at = now_rfc3339();
    // No listing card shows an image, so the cards stay as they are.
    let version = save_images(app, scope, &current, &product, "product.image_ready").await?;
    Ok(Versioned { value: product, version })
}

/// Removes an image from the product, then its object.
pub async fn delete_image(app: &App, scope: &TenantScope, product_id: &str, image_id: &str) -> Result<(), ApiError> {
    let bucket = assets_bucket(app)?;
    let current = get_product(app, scope, product_id).await?;
    let image =
        current.value.images.iter().find(|i| i.id == image_id).cloned().ok_or_else(|| not_found("image", image_id))?;
    let mut product = current.value.clone();
    product.images.retain(|i| i.id != image_id);
    product.updated_at = now_rfc3339();
    save_images(app, scope, &current, &product, "product.image_removed").await?;
    // After the record: an object without a record is garbage, a record without its object
    // would be a broken image.
    if let Err(err) = app.s3().delete_object().bucket(bucket).key(&image.key).send().await {
        tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(err), key = %image.key, "image object not deleted");
    }
    Ok(())
}
