//! Use cases of bulk operations: start a job (validate, store its input with its record,
//! enqueue), and run it.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde_json::json;

use super::dto::BulkUpdateRequest;
use super::jobs::{ProductImport, VariantBulkUpdate};
use super::model::*;
use crate::app::App;
use crate::audit::model::AuditEntry;
use crate::audit::repo::AuditLog;
use crate::catalog::model::{
    GenerationLock, OptionInput, OptionValueInput, Product, ProductStatus, Variant, VariantDefaults, VariantStatus,
    check_product, check_variant, resolve_options,
};
use crate::catalog::repo::{CatalogRepo, SkuClaim};
use crate::catalog::service::{Actor, generate_locked};
use crate::error::{ApiError, FieldError};
use crate::jobs::records::{JobRecord, JobRecords, JobStatus, RowError};
use crate::jobs::{Job, JobError};
use crate::store::{StoreError, Versioned, ids};
use crate::storefronts::service::refresh_listings;
use crate::tenancy::TenantScope;
use crate::vendors::repo::VendorRepo;
use crate::vendors::service::now_rfc3339;

/// Variants per transaction: each may take three items (itself, a SKU claim, the release of
/// its old SKU) beside the one lock check, within DynamoDB's 100.
const VARIANTS_PER_TRANSACTION: usize = 33;

/// What the variant rules say of a variant a job computed (a +1000 % price, stock past the
/// bounds): such a change is refused like a bad request would be.
fn variant_errors(variant: &Variant) -> Vec<String> {
    let mut errors = Vec::new();
    check_variant(variant, &mut errors);
    errors.into_iter().map(|e| format!("{}: {}", e.pointer, e.message)).collect()
}

fn retryable(err: StoreError) -> JobError {
    JobError::Retryable(err.to_string())
}

// ---------------------------------------------------------------- import

pub async fn start_import(app: &App, scope: &TenantScope, csv_text: String) -> Result<JobRecord, ApiError> {
    // A file that is no usable table is refused now; row errors are the job's to report.
    let (rows, row_errors) = parse_csv(&csv_text).map_err(ApiError::validation)?;
    if rows.is_empty() && row_errors.is_empty() {
        return Err(ApiError::validation(vec![FieldError::new("", "the file has no data rows")]));
    }
    let job_id = ids::new_id();
    let job = ProductImport {
        job_id: job_id.clone(),
        requested_by: scope.actor().user_id.clone(),
        requested_by_role: scope.actor().role.as_str().to_owned(),
    };
    crate::jobs::records::start_job(app, scope, job_id, &csv_text, &job).await
}

#[derive(Default)]
struct ImportStats {
    products_created: u64,
    products_updated: u64,
    variants_updated: u64,
    rows_imported: u64,
}

fn error_at(line: u64, message: impl Into<String>) -> RowError {
    RowError { line: Some(line), pointer: None, message: message.into() }
}

/// Runs an import: every product group on its own (one group's failure never touches
/// another), rows validated before anything of them is written; an upsert by handle and
/// option values, so running the same file again writes nothing.
pub async fn run_import(app: &App, scope: &TenantScope, job: &ProductImport) -> Result<serde_json::Value, JobError> {
    let records = JobRecords::new(&app.table, scope);
    let text: String = records
        .input(&job.job_id)
        .await
        .map_err(retryable)?
        .ok_or_else(|| JobError::Permanent("the import's file is missing".into()))?;
    let (rows, mut errors) =
        parse_csv(&text).map_err(|e| JobError::Permanent(format!("the file is not importable: {e:?}")))?;
    let refused_lines = errors.iter().filter_map(|e| e.line).collect::<std::collections::BTreeSet<_>>().len();
    let total = (rows.len() + refused_lines) as u64;
    let groups = group_rows(rows, &mut errors);
    records.progress(&job.job_id, JobStatus::Running, total, 0, errors.len() as u64).await.map_err(retryable)?;
    let currency = VendorRepo::new(&app.table, scope)
        .profile()
        .await
        .map_err(retryable)?
        .map(|v| v.value.currency)
        .ok_or_else(|| JobError::Permanent("the vendor does not exist".into()))?;
    let actor = Actor { user: &job.requested_by, role: &job.requested_by_role };
    let mut stats = ImportStats::default();
    let mut processed = refused_lines as u64;
    for (i, group) in groups.into_iter().enumerate() {
        processed += group.rows.len() as u64;
        import_group(app, scope, &job.job_id, actor, &currency, group, &mut errors, &mut stats).await?;
        if i % 20 == 19 {
            records
                .progress(&job.job_id, JobStatus::Running, total, processed, errors.len() as u64)
                .await
                .map_err(retryable)?;
        }
    }
    errors.sort_by_key(|e| e.line);
    let failed_rows = errors.iter().filter_map(|e| e.line).collect::<std::collections::BTreeSet<_>>().len() as u64;
    let result = json!({
        "rows": total,
        "rows_imported": stats.rows_imported,
        "rows_failed": failed_rows,
        "products_created": stats.products_created,
        "products_updated": stats.products_updated,
        "variants_updated": stats.variants_updated,
    });
    let mut record = JobRecord::queued(scope, job.job_id.clone(), ProductImport::TYPE, None);
    record.status = if errors.is_empty() { JobStatus::Succeeded } else { JobStatus::CompletedWithErrors };
    (record.total, record.processed, record.failed) = (total, total, failed_rows);
    record.errors = errors;
    record.result = Some(result.clone());
    records.finish(&record).await.map_err(retryable)?;
    Ok(result)
}

/// Imports one product's rows. Rows it refuses go to `errors` with their lines; a store
/// failure is the job's (retryable: the whole import is idempotent).
#[allow(clippy::too_many_arguments)]
async fn import_group(
    app: &App,
    scope: &TenantScope,
    job_id: &str,
    actor: Actor<'_>,
    currency: &str,
    group: super::model::ProductGroup,
    errors: &mut Vec<RowError>,
    stats: &mut ImportStats,
) -> Result<(), JobError> {
    let catalog = CatalogRepo::new(&app.table, scope);
    let handle = group.handle.clone();
    let fail_all = |rows: &[ImportRow], errors: &mut Vec<RowError>, why: &str| {
        errors.extend(rows.iter().map(|r| error_at(r.line, why)));
    };
    // Every row of a product names the same options, in the same order.
    let names: Vec<String> = group.rows[0].options.iter().map(|(n, _)| n.to_lowercase()).collect();
    let first_line = group.rows[0].line;
    let mut rows = Vec::with_capacity(group.rows.len());
    for row in group.rows {
        let row_names: Vec<String> = row.options.iter().map(|(n, _)| n.to_lowercase()).collect();
        if row_names == names {
            rows.push(row);
        } else {
            errors.push(error_at(
                row.line,
                format!("its options differ from line {first_line}'s ({})", names.join(", ")),
            ));
        }
    }
    let existing = match catalog.handle_claim(&handle).await.map_err(retryable)? {
        Some(claim) => catalog.product(&claim.product_id).await.map_err(retryable)?,
        None => None,
    };
    if let Some(source) = existing.as_ref().and_then(|p| p.value.synced_from()) {
        fail_all(&rows, errors, &format!("product {handle} is synced from {source}: change it there"));
        return Ok(());
    }
    if let Some(product) = &existing {
        let product_names: Vec<String> = product.value.options.iter().map(|o| o.name.to_lowercase()).collect();
        if product_names != names {
            let why = format!(
                "product {handle} has the options ({}); the rows give ({})",
                product_names.join(", "),
                names.join(", ")
            );
            fail_all(&rows, errors, &why);
            return Ok(());
        }
        if product.value.generation.as_ref().is_some_and(|l| l.job_id != job_id) {
            fail_all(
                &rows,
                errors,
                "a variant generation is running for this product; import again when it has finished",
            );
            return Ok(());
        }
    }
    // SKUs held elsewhere are refused before anything is written.
    let skus: Vec<String> = rows.iter().filter_map(|r| r.sku.clone()).collect();
    let claims = catalog.sku_claims(&skus).await.map_err(retryable)?;
    let existing_id = existing.as_ref().map(|p| p.value.id.clone());
    rows.retain(|row| match row.sku.as_ref().and_then(|s| claims.get(s)) {
        Some(claim) if Some(&claim.product_id) != existing_id.as_ref() => {
            errors.push(RowError {
                line: Some(row.line),
                pointer: Some("/sku".into()),
                message: format!("SKU {} is already used by product {}", claim.sku, claim.product_id),
            });
            false
        }
        _ => true,
    });
    // A SKU this product holds may only stay on the variant holding it: a row moving it to
    // another variant, or to a combination that does not exist yet, is refused now, before
    // its option values could add anything.
    // The variants as read here serve the rows below too, unless the product update generates
    // new ones.
    let mut read_variants = None;
    if let Some(product) = &existing
        && rows.iter().any(|r| r.sku.as_ref().is_some_and(|s| claims.contains_key(s)))
    {
        let variants = read_variants.insert(catalog.all_variants(&product.value.id).await.map_err(retryable)?);
        rows.retain(|row| {
            let Some(claim) = row.sku.as_ref().and_then(|s| claims.get(s)) else { return true };
            let target = row_combination(&product.value.options, row).and_then(|c| {
                variants.iter().find(|v| v.value.status == VariantStatus::Active && v.value.option_values == c)
            });
            if target.is_some_and(|v| v.value.id == claim.variant_id) {
                return true;
            }
            errors.push(RowError {
                line: Some(row.line),
                pointer: Some("/sku".into()),
                message: format!("SKU {} is already used by variant {} of this product", claim.sku, claim.variant_id),
            });
            false
        });
    }
    if rows.is_empty() {
        return Ok(());
    }

    // The product: created, extended with new option values, or updated.
    let product = match existing {
        None => match create_imported(app, scope, job_id, actor, currency, &handle, &rows).await? {
            Ok(product) => {
                stats.products_created += 1;
                read_variants = None;
                product
            }
            Err(why) => {
                fail_all(&rows, errors, &why);
                return Ok(());
            }
        },
        Some(product) => match update_imported(app, scope, job_id, actor, product, &rows).await? {
            Ok(Updated { product, changed, generated }) => {
                stats.products_updated += u64::from(changed);
                if generated {
                    read_variants = None;
                }
                product
            }
            Err(why) => {
                fail_all(&rows, errors, &why);
                return Ok(());
            }
        },
    };

    // The variants: each row's changes on the variant of its option values.
    let variants = match read_variants {
        Some(variants) => variants,
        None => catalog.all_variants(&product.value.id).await.map_err(retryable)?,
    };
    let by_combination: HashMap<&BTreeMap<String, String>, &Versioned<Variant>> = variants
        .iter()
        .filter(|v| v.value.status == VariantStatus::Active)
        .map(|v| (&v.value.option_values, v))
        .collect();
    let mut writes: Vec<(u64, &Versioned<Variant>, Variant)> = Vec::new();
    for row in &rows {
        let Some(variant) = row_combination(&product.value.options, row).and_then(|c| by_combination.get(&c).copied())
        else {
            errors.push(error_at(row.line, "no variant has these option values"));
            continue;
        };
        if let Some(claim) = row.sku.as_ref().and_then(|s| claims.get(s))
            && claim.variant_id != variant.value.id
        {
            errors.push(RowError {
                line: Some(row.line),
                pointer: Some("/sku".into()),
                message: format!("SKU {} is already used by variant {} of this product", claim.sku, claim.variant_id),
            });
            continue;
        }
        if let Some(mut next) = apply_row(&variant.value, row) {
            let mut invalid = Vec::new();
            check_variant(&next, &mut invalid);
            if !invalid.is_empty() {
                errors.extend(invalid.into_iter().map(|e| RowError {
                    line: Some(row.line),
                    pointer: Some(e.pointer),
                    message: e.message,
                }));
                continue;
            }
            next.updated_at = now_rfc3339();
            writes.push((row.line, variant, next));
        }
        stats.rows_imported += 1;
    }
    let refused =
        write_variants(app, scope, &product.value.id, writes.iter().map(|(line, old, new)| (*line, *old, new))).await?;
    let written = writes.len() - refused.len();
    stats.variants_updated += written as u64;
    stats.rows_imported -= refused.len() as u64;
    errors.extend(refused.into_iter().map(|(line, why)| error_at(line, why)));
    if written > 0 {
        let entry =
            AuditEntry::by(actor.user, actor.role, "variants.imported", format!("products/{}", product.value.id))
                .summary(format!("{written} variants changed by import job {job_id}"));
        AuditLog::new(&app.table, scope).record(&entry).await.map_err(retryable)?;
        refresh_listings(app, scope, &product.value).await;
    }
    Ok(())
}

/// The option set the rows call for on top of `current`: new values appended in file order.
fn merged_options(
    current: &[crate::catalog::model::ProductOption],
    names: &[(String, String)],
    rows: &[ImportRow],
) -> Vec<OptionInput> {
    let mut inputs: Vec<OptionInput> = if current.is_empty() {
        names.iter().map(|(name, _)| OptionInput { id: None, name: name.clone(), values: Vec::new() }).collect()
    } else {
        current
            .iter()
            .map(|o| OptionInput {
                id: Some(o.id.clone()),
                name: o.name.clone(),
                values: o
                    .values
                    .iter()
                    .map(|v| OptionValueInput { id: Some(v.id.clone()), value: v.value.clone() })
                    .collect(),
            })
            .collect()
    };
    for row in rows {
        for (i, (_, value)) in row.options.iter().enumerate() {
            let values = &mut inputs[i].values;
            if !values.iter().any(|v| v.value.to_lowercase() == value.to_lowercase()) {
                values.push(OptionValueInput { id: None, value: value.clone() });
            }
        }
    }
    inputs
}

fn option_errors(errors: Vec<FieldError>) -> String {
    errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; ")
}

/// A new product from its rows, created holding a generation lock for this job, then its
/// variants generated. `Ok(Err(why))` when the rows cannot make a product.
async fn create_imported(
    app: &App,
    scope: &TenantScope,
    job_id: &str,
    actor: Actor<'_>,
    currency: &str,
    handle: &str,
    rows: &[ImportRow],
) -> Result<Result<Versioned<Product>, String>, JobError> {
    let Some(head) = rows.iter().find(|r| r.title.is_some()) else {
        return Ok(Err(format!("no row of {handle} gives the product a title")));
    };
    let options = match resolve_options(&[], merged_options(&[], &head.options, rows), &mut ids::new_id) {
        Ok(options) => options,
        Err(e) => return Ok(Err(option_errors(e))),
    };
    let now = now_rfc3339();
    let product = Product {
        id: ids::new_id(),
        handle: handle.to_owned(),
        title: head.title.clone().unwrap_or_default(),
        description: head.description.clone().unwrap_or_default(),
        status: head.status.unwrap_or(ProductStatus::Draft),
        tags: head.tags.clone().unwrap_or_default(),
        attributes: Default::default(),
        options,
        currency: currency.to_owned(),
        variant_defaults: VariantDefaults {
            price_minor: head.price_minor.unwrap_or(0),
            weight_grams: head.weight_grams,
            inventory_policy: head.inventory_policy.unwrap_or_default(),
            compare_at_price_minor: None,
        },
        variant_count: 0,
        options_revision: 1,
        generation: Some(GenerationLock { job_id: job_id.to_owned(), options_revision: 1, started_at: now.clone() }),
        images: Vec::new(),
        storefronts: Vec::new(),
        external: None,
        created_at: now.clone(),
        updated_at: now,
    };
    let mut field_errors = Vec::new();
    check_product(&product, &mut field_errors);
    if !field_errors.is_empty() {
        return Ok(Err(option_errors(field_errors)));
    }
    let catalog = CatalogRepo::new(&app.table, scope);
    let entry = AuditEntry::by(actor.user, actor.role, "product.created", format!("products/{}", product.id))
        .versions(None, Some(1))
        .summary(format!("imported by job {job_id}"));
    let items = vec![
        catalog.put_product(&product, None).map_err(retryable)?,
        catalog.claim_handle(handle, &product.id).map_err(retryable)?,
        AuditLog::new(&app.table, scope).transact_put(&entry).map_err(retryable)?,
    ];
    match catalog.commit(items).await {
        Ok(()) => {}
        Err(StoreError::TransactionConditionFailed { .. }) => {
            return Ok(Err(format!("the handle {handle} was taken while importing; import again")));
        }
        Err(other) => return Err(retryable(other)),
    }
    let locked = Versioned { value: product, version: 1 };
    match generate_locked(app, scope, locked, job_id, actor, None).await? {
        Some(generated) => Ok(Ok(generated.product)),
        None => Ok(Err("the product's variant generation was interrupted; import again".into())),
    }
}

/// An existing product brought in line with its rows: product fields from the first row
/// with a title, new option values added (and their variants generated). Returns the
/// product and whether it changed. A lock this job holds (a previous try died half-way) is
/// resumed.
/// An imported product as updated: whether anything changed, and whether its variants were
/// generated anew (so those read before are stale).
struct Updated {
    product: Versioned<Product>,
    changed: bool,
    generated: bool,
}

async fn update_imported(
    app: &App,
    scope: &TenantScope,
    job_id: &str,
    actor: Actor<'_>,
    mut product: Versioned<Product>,
    rows: &[ImportRow],
) -> Result<Result<Updated, String>, JobError> {
    if product.value.generation.is_some() {
        return match generate_locked(app, scope, product, job_id, actor, None).await? {
            Some(generated) => Ok(Ok(Updated { product: generated.product, changed: true, generated: true })),
            None => Ok(Err("the product's variant generation was interrupted; import again".into())),
        };
    }
    let mut next = product.value.clone();
    if let Some(head) = rows.iter().find(|r| r.title.is_some()) {
        next.title = head.title.clone().unwrap_or_default();
        if let Some(d) = &head.description {
            next.description = d.clone();
        }
        if let Some(s) = head.status {
            next.status = s;
        }
        if let Some(t) = &head.tags {
            next.tags = t.clone();
        }
    }
    let inputs = merged_options(&product.value.options, &[], rows);
    let grows = inputs.iter().zip(&product.value.options).any(|(i, o)| i.values.len() != o.values.len());
    if grows {
        match resolve_options(&product.value.options, inputs, &mut ids::new_id) {
            Ok(options) => next.options = options,
            Err(e) => return Ok(Err(option_errors(e))),
        }
        next.options_revision += 1;
        next.generation = Some(GenerationLock {
            job_id: job_id.to_owned(),
            options_revision: next.options_revision,
            started_at: now_rfc3339(),
        });
    }
    if next == product.value {
        return Ok(Ok(Updated { product, changed: false, generated: false }));
    }
    let mut errors = Vec::new();
    check_product(&next, &mut errors);
    if !errors.is_empty() {
        return Ok(Err(option_errors(errors)));
    }
    next.updated_at = now_rfc3339();
    let catalog = CatalogRepo::new(&app.table, scope);
    let action = if grows { "product.options_updated" } else { "product.updated" };
    let entry = AuditEntry::by(actor.user, actor.role, action, format!("products/{}", next.id))
        .versions(Some(product.version), Some(product.version + 1))
        .summary(format!("imported by job {job_id}"));
    let items = vec![
        catalog.put_product(&next, Some(product.version)).map_err(retryable)?,
        AuditLog::new(&app.table, scope).transact_put(&entry).map_err(retryable)?,
    ];
    match catalog.commit(items).await {
        Ok(()) => {}
        // Someone edited the product meanwhile: the job's retry reads it again.
        Err(StoreError::TransactionConditionFailed { .. }) => {
            return Err(JobError::Retryable(format!("product {} changed during the import", next.id)));
        }
        Err(other) => return Err(retryable(other)),
    }
    product = Versioned { value: next, version: product.version + 1 };
    if grows {
        return match generate_locked(app, scope, product, job_id, actor, None).await? {
            Some(generated) => Ok(Ok(Updated { product: generated.product, changed: true, generated: true })),
            None => Ok(Err("the product's variant generation was interrupted; import again".into())),
        };
    }
    Ok(Ok(Updated { product, changed: true, generated: false }))
}

/// Writes variant changes in transactions of up to [`VARIANTS_PER_TRANSACTION`], each
/// conditioned on the versions read and on the product being unlocked. A transaction that
/// fails is retried one variant at a time, so only the variants that really conflict are
/// refused. Returns the refused ones as (line or index, reason).
async fn write_variants<'v>(
    app: &App,
    scope: &TenantScope,
    product_id: &str,
    writes: impl Iterator<Item = (u64, &'v Versioned<Variant>, &'v Variant)>,
) -> Result<Vec<(u64, String)>, JobError> {
    let catalog = CatalogRepo::new(&app.table, scope);
    let writes: Vec<_> = writes.collect();
    let items_of = |old: &Versioned<Variant>, new: &Variant| -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = vec![catalog.put_variant(new, Some(old.version))?];
        if new.sku != old.value.sku {
            if let Some(sku) = &new.sku {
                items.push(catalog.claim_sku(sku, new)?);
            }
            if let Some(sku) = &old.value.sku {
                items.push(catalog.release_sku(sku, &old.value.id)?);
            }
        }
        Ok(items)
    };
    let mut refused = Vec::new();
    for chunk in writes.chunks(VARIANTS_PER_TRANSACTION) {
        let mut items = vec![catalog.check_unlocked(product_id).map_err(retryable)?];
        for (_, old, new) in chunk {
            items.extend(items_of(old, new).map_err(retryable)?);
        }
        match catalog.commit(items).await {
            Ok(()) => continue,
            Err(StoreError::TransactionConditionFailed { .. }) => {}
            Err(other) => return Err(retryable(other)),
        }
        for (line, old, new) in chunk {
            let mut items = vec![catalog.check_unlocked(product_id).map_err(retryable)?];
            items.extend(items_of(old, new).map_err(retryable)?);
            match catalog.commit(items).await {
                Ok(()) => {}
                Err(StoreError::TransactionConditionFailed { failed }) => {
                    let why = if failed.contains(&0) {
                        "the product is locked by a variant generation; try again when it has finished".to_owned()
                    } else if failed.contains(&1) {
                        "the variant changed while this job ran; run it again".to_owned()
                    } else {
                        format!("SKU {} was taken while this job ran", new.sku.clone().unwrap_or_default())
                    };
                    refused.push((*line, why));
                }
                Err(other) => return Err(retryable(other)),
            }
        }
    }
    Ok(refused)
}

// ---------------------------------------------------------------- bulk update

pub async fn start_bulk_update(app: &App, scope: &TenantScope, req: BulkUpdateRequest) -> Result<JobRecord, ApiError> {
    let mut errors = Vec::new();
    match (&req.filter, &req.changes, &req.items) {
        (Some(_), Some(changes), None) => check_changes(changes, "/changes", &mut errors),
        (None, None, Some(items)) => {
            if items.is_empty() || items.len() > 5_000 {
                errors.push(FieldError::new("/items", "give 1 to 5,000 items"));
            }
            for (i, item) in items.iter().enumerate() {
                let at = format!("/items/{i}");
                let by_sku = item.sku.is_some() && item.product_id.is_none() && item.variant_id.is_none();
                let by_ids = item.sku.is_none() && item.product_id.is_some() && item.variant_id.is_some();
                if !by_sku && !by_ids {
                    errors.push(FieldError::new(&at, "name the variant by sku, or by product_id and variant_id"));
                }
                check_changes(&item.changes, &at, &mut errors);
            }
            // One entry per variant: two would write one item twice in a transaction.
            let mut seen = std::collections::HashMap::new();
            for (i, item) in items.iter().enumerate() {
                let target = match (&item.sku, &item.product_id, &item.variant_id) {
                    (Some(sku), _, _) => format!("sku {sku}"),
                    (None, Some(p), Some(v)) => format!("variant {p}/{v}"),
                    _ => continue,
                };
                if let Some(first) = seen.insert(target.clone(), i) {
                    errors.push(FieldError::new(format!("/items/{i}"), format!("{target} is already item {first}")));
                }
            }
        }
        _ => errors.push(FieldError::new("", "give either filter with changes, or items")),
    }
    if let Some(filter) = &req.filter
        && filter.product_ids.as_ref().is_some_and(|ids| ids.is_empty() || ids.len() > 1_000)
    {
        errors.push(FieldError::new("/filter/product_ids", "give 1 to 1,000 product ids"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let job_id = ids::new_id();
    let job = VariantBulkUpdate {
        job_id: job_id.clone(),
        requested_by: scope.actor().user_id.clone(),
        requested_by_role: scope.actor().role.as_str().to_owned(),
    };
    crate::jobs::records::start_job(app, scope, job_id, &req, &job).await
}

/// A variant to change: where it came from in the request (for errors) and what to do.
struct Target {
    /// `/items/<i>`, or the variant id for a filter.
    source: String,
    variant_id: String,
    changes: VariantChanges,
}

/// Runs a bulk update: the targets grouped by product, each product's variants read once
/// and written in transactions. A variant this job changed already (an earlier try) is
/// skipped, so adjustments apply once.
pub async fn run_bulk_update(
    app: &App,
    scope: &TenantScope,
    job: &VariantBulkUpdate,
) -> Result<serde_json::Value, JobError> {
    let records = JobRecords::new(&app.table, scope);
    let req: BulkUpdateRequest = records
        .input(&job.job_id)
        .await
        .map_err(retryable)?
        .ok_or_else(|| JobError::Permanent("the bulk update's request is missing".into()))?;
    let catalog = CatalogRepo::new(&app.table, scope);
    let mut errors: Vec<RowError> = Vec::new();
    let refuse = |errors: &mut Vec<RowError>, source: &str, message: String| {
        errors.push(RowError { line: None, pointer: Some(source.to_owned()), message })
    };

    // product id → its targets (None: every active variant gets the filter's changes).
    let mut by_product: BTreeMap<String, Option<Vec<Target>>> = BTreeMap::new();
    if let (Some(filter), Some(_)) = (&req.filter, &req.changes) {
        let candidates: Vec<Versioned<Product>> = match &filter.product_ids {
            Some(ids) => {
                let mut found = Vec::new();
                for id in ids {
                    match catalog.product(id).await.map_err(retryable)? {
                        Some(p) => found.push(p),
                        None => {
                            refuse(&mut errors, &format!("/filter/product_ids/{id}"), format!("product {id} not found"))
                        }
                    }
                }
                found
            }
            None => {
                let mut all = Vec::new();
                let mut cursor = None;
                loop {
                    let (page, next) = catalog.products(100, cursor.as_ref()).await.map_err(retryable)?;
                    all.extend(page);
                    match next {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                all
            }
        };
        for p in candidates {
            let tag_ok = filter.tag.as_ref().is_none_or(|t| p.value.tags.iter().any(|x| x == t));
            let status_ok = filter.product_status.is_none_or(|s| s == p.value.status);
            if tag_ok && status_ok {
                by_product.insert(p.value.id, None);
            }
        }
    } else if let Some(items) = &req.items {
        let skus: Vec<String> = items.iter().filter_map(|i| i.sku.clone()).collect();
        let claims: HashMap<String, SkuClaim> = catalog.sku_claims(&skus).await.map_err(retryable)?;
        for (i, item) in items.iter().enumerate() {
            let source = format!("/items/{i}");
            let (product_id, variant_id) = match (&item.sku, &item.product_id, &item.variant_id) {
                (Some(sku), _, _) => match claims.get(sku) {
                    Some(c) => (c.product_id.clone(), c.variant_id.clone()),
                    None => {
                        refuse(&mut errors, &source, format!("no variant has SKU {sku}"));
                        continue;
                    }
                },
                (None, Some(p), Some(v)) => (p.clone(), v.clone()),
                _ => continue,
            };
            by_product
                .entry(product_id)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(Target { source, variant_id, changes: item.changes.clone() });
        }
    }

    let total = by_product.len() as u64;
    records.progress(&job.job_id, JobStatus::Running, total, 0, 0).await.map_err(retryable)?;
    let mut changed = 0u64;
    let mut unchanged = 0u64;
    for (done, (product_id, targets)) in by_product.into_iter().enumerate() {
        let Some((product, variants)) = catalog.product_with_variants(&product_id).await.map_err(retryable)? else {
            for t in targets.iter().flatten() {
                refuse(&mut errors, &t.source, format!("product {product_id} not found"));
            }
            continue;
        };
        let by_id: HashMap<&str, &Versioned<Variant>> = variants.iter().map(|v| (v.value.id.as_str(), v)).collect();
        let targets = targets.unwrap_or_else(|| {
            let changes = req.changes.clone().unwrap_or_default();
            variants
                .iter()
                .filter(|v| v.value.status == VariantStatus::Active)
                .map(|v| Target {
                    source: format!("/variants/{}", v.value.id),
                    variant_id: v.value.id.clone(),
                    changes: changes.clone(),
                })
                .collect()
        });
        let mut writes: Vec<(u64, &Versioned<Variant>, Variant)> = Vec::new();
        let mut sources = Vec::new();
        for target in &targets {
            let Some(variant) = by_id.get(target.variant_id.as_str()).copied() else {
                refuse(
                    &mut errors,
                    &target.source,
                    format!("product {product_id} has no variant {}", target.variant_id),
                );
                continue;
            };
            if variant.value.status != VariantStatus::Active {
                refuse(&mut errors, &target.source, "the variant is archived".into());
                continue;
            }
            if variant.value.bulk_jobs.iter().any(|j| j == &job.job_id) {
                changed += 1; // applied by an earlier try of this job
                continue;
            }
            match apply_changes(&variant.value, &target.changes) {
                Some(next) if !variant_errors(&next).is_empty() => {
                    refuse(&mut errors, &target.source, variant_errors(&next).join("; "));
                }
                Some(mut next) => {
                    next.remember_bulk_job(&job.job_id);
                    next.updated_at = now_rfc3339();
                    writes.push((sources.len() as u64, variant, next));
                    sources.push(target.source.clone());
                }
                None => unchanged += 1,
            }
        }
        if let Some(source) = product.value.synced_from() {
            for source_pointer in &sources {
                refuse(&mut errors, source_pointer, format!("the product is synced from {source}: change it there"));
            }
            continue;
        }
        if product.value.generation.is_some() {
            for source in &sources {
                refuse(
                    &mut errors,
                    source,
                    "a variant generation is running for this product; run the update again when it has finished"
                        .into(),
                );
            }
            continue;
        }
        let refused =
            write_variants(app, scope, &product_id, writes.iter().map(|(i, old, new)| (*i, *old, new))).await?;
        changed += (writes.len() - refused.len()) as u64;
        for (i, why) in refused {
            refuse(&mut errors, &sources[i as usize], why);
        }
        if !writes.is_empty() {
            let entry = AuditEntry::by(
                &job.requested_by,
                &job.requested_by_role,
                "variants.bulk_updated",
                format!("products/{product_id}"),
            )
            .summary(format!("{} variants changed by job {}", writes.len(), job.job_id));
            AuditLog::new(&app.table, scope).record(&entry).await.map_err(retryable)?;
            refresh_listings(app, scope, &product.value).await;
        }
        if done % 20 == 19 {
            records.progress(&job.job_id, JobStatus::Running, total, done as u64 + 1, 0).await.map_err(retryable)?;
        }
    }
    let result = json!({ "products": total, "variants_changed": changed, "variants_unchanged": unchanged, "refused": errors.len() });
    let mut record = JobRecord::queued(scope, job.job_id.clone(), VariantBulkUpdate::TYPE, None);
    record.status = if errors.is_empty() { JobStatus::Succeeded } else { JobStatus::CompletedWithErrors };
    (record.total, record.processed, record.failed) = (total, total, errors.len() as u64);
    record.errors = errors;
    record.result = Some(result.clone());
    records.finish(&record).await.map_err(retryable)?;
    Ok(result)
}
