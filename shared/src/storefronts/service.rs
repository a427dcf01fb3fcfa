//! Use cases of storefronts, listings and the public catalogue.

use super::dto::*;
use super::model::*;
use super::repo::{self, StorefrontRepo};
use crate::app::App;
use crate::audit::model::AuditEntry;
use crate::audit::repo::AuditLog;
use crate::catalog::dto::VariantResponse;
use crate::catalog::model::{ImageStatus, InventoryPolicy, Product, ProductStatus, Variant};
use crate::catalog::repo::CatalogRepo;
use crate::error::{ApiError, FieldError};
use crate::store::keys::LookupBy;
use crate::store::{Cursor, StoreError, Versioned, ids};
use crate::tenancy::{TenantScope, guard};
use crate::vendors::repo::VendorRepo;
use crate::vendors::service::now_rfc3339;

pub async fn get_storefront(app: &App, scope: &TenantScope, id: &str) -> Result<Versioned<Storefront>, ApiError> {
    StorefrontRepo::new(&app.table, scope)
        .storefront(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("storefront {id} not found")))
}

pub async fn list_storefronts(
    app: &App,
    scope: &TenantScope,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<StorefrontList, ApiError> {
    let (items, next) = StorefrontRepo::new(&app.table, scope).storefronts(limit, cursor.as_ref()).await?;
    Ok(StorefrontList {
        items: items.into_iter().map(|s| StorefrontResponse::from(s.value)).collect(),
        next_cursor: next.map(|c| c.encode()),
    })
}

/// Maps a failed storefront transaction: which slug or host (by the items' indexes) is taken.
fn storefront_write_failed(err: StoreError, claims: &[(usize, &str, &str)]) -> ApiError {
    match err {
        StoreError::TransactionConditionFailed { failed } => {
            for (index, field, value) in claims {
                if failed.contains(index) {
                    return ApiError::Conflict(format!("the {field} {value} is already taken by another storefront"));
                }
            }
            if failed.contains(&0) {
                ApiError::stale("storefront")
            } else {
                ApiError::Conflict("the storefront changed meanwhile".into())
            }
        }
        other => other.into(),
    }
}

pub async fn create_storefront(
    app: &App,
    scope: &TenantScope,
    req: CreateStorefrontRequest,
) -> Result<Versioned<Storefront>, ApiError> {
    let currency = match req.currency {
        Some(c) => c,
        None => VendorRepo::new(&app.table, scope).profile().await?.map(|v| v.value.currency).unwrap_or_default(),
    };
    let now = now_rfc3339();
    let storefront = Storefront {
        id: ids::new_id(),
        name: req.name.trim().to_owned(),
        slug: req.slug,
        host: req.host,
        branding: req.branding,
        currency,
        status: req.status.unwrap_or(StorefrontStatus::Active),
        created_at: now.clone(),
        updated_at: now,
    };
    let mut errors = Vec::new();
    check_storefront(&storefront, &mut errors);
    ApiError::reject_if_any(errors)?;
    crate::plans::service::check_storefronts(app, scope).await?;
    let repo = StorefrontRepo::new(&app.table, scope);
    let mut items = vec![
        repo.put_storefront(&storefront, None)?,
        repo.claim_lookup(LookupBy::Slug, &storefront.slug, &storefront)?,
    ];
    let mut claims = vec![(1, "slug", storefront.slug.as_str())];
    if let Some(host) = &storefront.host {
        claims.push((items.len(), "host", host.as_str()));
        items.push(repo.claim_lookup(LookupBy::Host, host, &storefront)?);
    }
    let entry =
        AuditEntry::new(scope, "storefront.created", format!("storefronts/{}", storefront.id)).versions(None, Some(1));
    items.push(AuditLog::new(&app.table, scope).transact_put(&entry)?);
    repo.commit(items).await.map_err(|e| storefront_write_failed(e, &claims))?;
    Ok(Versioned { value: storefront, version: 1 })
}

pub async fn update_storefront(
    app: &App,
    scope: &TenantScope,
    id: &str,
    expected: u64,
    req: UpdateStorefrontRequest,
) -> Result<Versioned<Storefront>, ApiError> {
    let current = get_storefront(app, scope, id).await?;
    if current.version != expected {
        return Err(ApiError::stale("storefront"));
    }
    let mut s = current.value.clone();
    if let Some(name) = req.name {
        s.name = name.trim().to_owned();
    }
    if let Some(slug) = req.slug {
        s.slug = slug;
    }
    if let Some(host) = req.host {
        s.host = host;
    }
    if let Some(branding) = req.branding {
        s.branding = branding;
    }
    if let Some(status) = req.status {
        s.status = status;
    }
    let mut errors = Vec::new();
    check_storefront(&s, &mut errors);
    ApiError::reject_if_any(errors)?;
    s.updated_at = now_rfc3339();

    let repo = StorefrontRepo::new(&app.table, scope);
    let mut items = vec![repo.put_storefront(&s, Some(expected))?];
    let mut claims = Vec::new();
    // Every lookup the storefront keeps is rewritten (its public face may have changed);
    // new ones are claimed, dropped ones released, all in the one transaction.
    let old = &current.value;
    let pairs = [
        (LookupBy::Slug, "slug", Some(&old.slug), Some(&s.slug)),
        (LookupBy::Host, "host", old.host.as_ref(), s.host.as_ref()),
    ];
    for (by, field, before, after) in pairs {
        match (before, after) {
            (Some(b), Some(a)) if b == a => items.push(repo.refresh_lookup(by, a, &s)?),
            (before, after) => {
                if let Some(a) = after {
                    claims.push((items.len(), field, a.as_str()));
                    items.push(repo.claim_lookup(by, a, &s)?);
                }
                if let Some(b) = before {
                    items.push(repo.release_lookup(by, b, &s.id)?);
                }
            }
        }
    }
    let entry = AuditEntry::new(scope, "storefront.updated", format!("storefronts/{id}"))
        .versions(Some(expected), Some(expected + 1));
    items.push(AuditLog::new(&app.table, scope).transact_put(&entry)?);
    repo.commit(items).await.map_err(|e| storefront_write_failed(e, &claims))?;
    Ok(Versioned { value: s, version: expected + 1 })
}

// ---------------------------------------------------------------- listings

fn new_listing(
    storefront_id: &str,
    product: &Product,
    variants: &[Versioned<Variant>],
    o: ListingOverride,
    created_at: String,
) -> Listing {
    Listing {
        storefront_id: storefront_id.to_owned(),
        product_id: product.id.clone(),
        card: build_card(product, variants, &o),
        available_from_epoch_s: o.available_from.as_deref().and_then(epoch_seconds),
        available_until_epoch_s: o.available_until.as_deref().and_then(epoch_seconds),
        overrides: o,
        created_at,
        updated_at: now_rfc3339(),
    }
}

/// Lists a product on a storefront or replaces its overrides (`If-Match` when it is listed
/// already). Returns the listing and whether it was created.
pub async fn put_listing(
    app: &App,
    scope: &TenantScope,
    storefront_id: &str,
    product_id: &str,
    expected: Option<u64>,
    o: ListingOverride,
) -> Result<(Versioned<Listing>, bool), ApiError> {
    let repo = StorefrontRepo::new(&app.table, scope);
    let storefront = get_storefront(app, scope, storefront_id).await?;
    let catalog = CatalogRepo::new(&app.table, scope);
    let (product, variants) = catalog
        .product_with_variants(product_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("product {product_id} not found")))?;
    let existing = repo.listing(storefront_id, product_id).await?;
    match (&existing, expected) {
        (Some(_), None) => {
            return Err(ApiError::PreconditionRequired(
                "the product is listed already: send If-Match with its ETag".into(),
            ));
        }
        (Some(found), Some(v)) if found.version != v => return Err(ApiError::stale("listing")),
        (None, Some(_)) => return Err(ApiError::stale("listing")),
        _ => {}
    }
    let mut errors = Vec::new();
    if product.value.currency != storefront.value.currency {
        errors.push(FieldError::new(
            "",
            format!(
                "the product is priced in {} and the storefront sells in {}",
                product.value.currency, storefront.value.currency
            ),
        ));
    }
    check_override(&o, &variants, &mut errors);
    ApiError::reject_if_any(errors)?;
    let created_at = existing.as_ref().map_or_else(now_rfc3339, |l| l.value.created_at.clone());
    let listing = new_listing(storefront_id, &product.value, &variants, o, created_at);
    let resource = format!("storefronts/{storefront_id}/products/{product_id}");
    let audit = AuditLog::new(&app.table, scope);
    let (items, version) = match &existing {
        Some(found) => {
            let entry = AuditEntry::new(scope, "listing.updated", resource)
                .versions(Some(found.version), Some(found.version + 1));
            (vec![repo.put_listing(&listing, Some(found.version))?, audit.transact_put(&entry)?], found.version + 1)
        }
        None => {
            // The product records where it is listed, in the same transaction.
            let mut listed = product.value.clone();
            if !listed.storefronts.iter().any(|s| s == storefront_id) {
                listed.storefronts.push(storefront_id.to_owned());
            }
            listed.updated_at = now_rfc3339();
            let entry = AuditEntry::new(scope, "listing.created", resource).versions(None, Some(1));
            let items = vec![
                repo.put_listing(&listing, None)?,
                catalog.put_product(&listed, Some(product.version))?,
                audit.transact_put(&entry)?,
            ];
            (items, 1)
        }
    };
    match repo.commit(items).await {
        Ok(()) => Ok((Versioned { value: listing, version }, existing.is_none())),
        Err(StoreError::TransactionConditionFailed { .. }) => {
            Err(ApiError::Conflict("the listing or its product changed meanwhile; read them again".into()))
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn delete_listing(
    app: &App,
    scope: &TenantScope,
    storefront_id: &str,
    product_id: &str,
) -> Result<(), ApiError> {
    let repo = StorefrontRepo::new(&app.table, scope);
    let catalog = CatalogRepo::new(&app.table, scope);
    let not_listed = || ApiError::NotFound(format!("product {product_id} is not listed on storefront {storefront_id}"));
    let listing = repo.listing(storefront_id, product_id).await?.ok_or_else(not_listed)?;
    let product = catalog.product(product_id).await?.ok_or_else(not_listed)?;
    let mut unlisted = product.value.clone();
    unlisted.storefronts.retain(|s| s != storefront_id);
    unlisted.updated_at = now_rfc3339();
    let entry = AuditEntry::new(scope, "listing.deleted", format!("storefronts/{storefront_id}/products/{product_id}"))
        .versions(Some(listing.version), None);
    let items = vec![
        repo.delete_listing(storefront_id, product_id)?,
        catalog.put_product(&unlisted, Some(product.version))?,
        AuditLog::new(&app.table, scope).transact_put(&entry)?,
    ];
    match repo.commit(items).await {
        Ok(()) => Ok(()),
        Err(StoreError::TransactionConditionFailed { .. }) => {
            Err(ApiError::Conflict("the listing or its product changed meanwhile; try again".into()))
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn list_listings(
    app: &App,
    scope: &TenantScope,
    storefront_id: &str,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<ListingList, ApiError> {
    get_storefront(app, scope, storefront_id).await?;
    let (items, next) = StorefrontRepo::new(&app.table, scope).listings(storefront_id, limit, cursor.as_ref()).await?;
    Ok(ListingList {
        items: items.into_iter().map(|l| ListingResponse::from(l.value)).collect(),
        next_cursor: next.map(|c| c.encode()),
    })
}

/// Rebuilds the cards of a product's listings after a write that changed its variants (or
/// whatever the caller cannot tell). Best effort: the write has happened; a card that cannot
/// be rebuilt now is logged and rebuilt by the next write (the public product page reads the
/// product live, so only the list's card lags).
pub async fn refresh_listings(app: &App, scope: &TenantScope, written: &Product) {
    if written.storefronts.is_empty() {
        return;
    }
    if let Err(err) = rebuild_cards(app, scope, &written.id, &written.storefronts).await {
        tracing::warn!(error = %err, product_id = %written.id, "listing cards not refreshed");
    }
}

/// After a write that changed only the product's own fields (title, status, tags, …): patches
/// that part of each card from the product as written and keeps the variants' part, so the
/// variants are not read. The card is saved only while the product is still the version
/// written; when it has moved on (a later write), the cards are rebuilt from the store.
pub async fn refresh_listings_of_product(app: &App, scope: &TenantScope, written: &Versioned<Product>) {
    if written.value.storefronts.is_empty() {
        return;
    }
    if let Err(err) = patch_cards(app, scope, written).await {
        tracing::warn!(error = %err, product_id = %written.value.id, "listing cards not refreshed");
    }
}

/// Each listing is read before the product's partition, and saved only if it is still the
/// version read: a card saved by anyone else since was built from a snapshot older than this
/// one, so the last card saved is never older than the catalogue it replaced. A listing that
/// changed meanwhile is read again with a fresh snapshot.
async fn rebuild_cards(
    app: &App,
    scope: &TenantScope,
    product_id: &str,
    storefront_ids: &[String],
) -> Result<(), StoreError> {
    let repo = StorefrontRepo::new(&app.table, scope);
    let mut pending = storefront_ids.to_vec();
    for _ in 0..3 {
        let listings = repo.listings_of_product(product_id, &pending).await?;
        let Some((product, variants)) = CatalogRepo::new(&app.table, scope).product_with_variants(product_id).await?
        else {
            return Ok(());
        };
        pending.clear();
        for listing in listings {
            let card = build_card(&product.value, &variants, &listing.value.overrides);
            if card == listing.value.card {
                continue;
            }
            let refreshed = Listing { card, updated_at: now_rfc3339(), ..listing.value };
            match repo.replace_listing(&refreshed, listing.version).await {
                Ok(()) => {}
                Err(StoreError::ConditionFailed) => pending.push(refreshed.storefront_id),
                Err(other) => return Err(other),
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(StoreError::Contention)
}

async fn patch_cards(app: &App, scope: &TenantScope, written: &Versioned<Product>) -> Result<(), StoreError> {
    let repo = StorefrontRepo::new(&app.table, scope);
    let product = &written.value;
    let mut pending = product.storefronts.clone();
    for _ in 0..3 {
        let listings = repo.listings_of_product(&product.id, &pending).await?;
        pending.clear();
        for listing in listings {
            let mut card = listing.value.card.clone();
            card.set_product_part(product, &listing.value.overrides);
            if card == listing.value.card {
                continue;
            }
            let refreshed = Listing { card, updated_at: now_rfc3339(), ..listing.value };
            match repo.replace_listing_of_product(&refreshed, listing.version, written.version).await {
                Ok(()) => {}
                // The product moved on: its later writer's copy may be the older one.
                Err(StoreError::TransactionConditionFailed { failed }) if failed.contains(&1) => {
                    return rebuild_cards(app, scope, &product.id, &product.storefronts).await;
                }
                Err(StoreError::TransactionConditionFailed { .. }) => pending.push(refreshed.storefront_id),
                Err(other) => return Err(other),
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
    }
    rebuild_cards(app, scope, &product.id, &pending).await
}

// ---------------------------------------------------------------- public catalogue

/// The storefront resolver: the tenant of a public request comes from the storefront's
/// slug (or host, when the segment has a dot) through its global lookup item, never from the
/// request itself. Unknown and disabled storefronts are the same 404.
pub async fn resolve(app: &App, slug_or_host: &str) -> Result<(TenantScope, StorefrontLookup), ApiError> {
    let not_found = || ApiError::NotFound(format!("storefront {slug_or_host} not found"));
    let by = if slug_or_host.contains('.') { LookupBy::Host } else { LookupBy::Slug };
    let found = repo::lookup(&app.table, by, &slug_or_host.to_ascii_lowercase()).await?.ok_or_else(not_found)?;
    if found.status != StorefrontStatus::Active {
        return Err(not_found());
    }
    let scope = guard::storefront_scope(&found.owner_vendor).map_err(|_| not_found())?;
    Ok((scope, found))
}

fn public_storefront(s: &StorefrontLookup) -> PublicStorefront {
    PublicStorefront {
        name: s.name.clone(),
        slug: s.slug.clone(),
        currency: s.currency.clone(),
        branding: s.branding.clone(),
    }
}

fn now_epoch_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One page of the storefront's products: the resolver's read and one Query.
pub async fn public_products(
    app: &App,
    slug_or_host: &str,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<PublicProductList, ApiError> {
    let (scope, storefront) = resolve(app, slug_or_host).await?;
    let (listings, next) = StorefrontRepo::new(&app.table, &scope)
        .public_listings(&storefront.storefront_id, limit, cursor.as_ref(), now_epoch_s())
        .await?;
    Ok(PublicProductList {
        storefront: public_storefront(&storefront),
        items: listings
            .into_iter()
            .map(|l| PublicProductCard {
                id: l.product_id,
                handle: l.card.handle,
                title: l.card.title,
                description: l.card.description,
                tags: l.card.tags,
                currency: l.card.currency,
                price_min_minor: l.card.price_min_minor,
                price_max_minor: l.card.price_max_minor,
                in_stock: l.card.in_stock,
            })
            .collect(),
        next_cursor: next.map(|c| c.encode()),
    })
}

/// One product as the storefront shows it, read live: the resolver's read, the listing, and
/// the product with its variants (one Query: they share a partition).
pub async fn public_product(app: &App, slug_or_host: &str, product_id: &str) -> Result<PublicProduct, ApiError> {
    let (scope, storefront) = resolve(app, slug_or_host).await?;
    let not_found = || ApiError::NotFound(format!("product {product_id} not found on this storefront"));
    let listing = StorefrontRepo::new(&app.table, &scope)
        .listing(&storefront.storefront_id, product_id)
        .await?
        .ok_or_else(not_found)?
        .value;
    if !listing.is_available_at(now_epoch_s()) {
        return Err(not_found());
    }
    let (product, variants) =
        CatalogRepo::new(&app.table, &scope).product_with_variants(product_id).await?.ok_or_else(not_found)?;
    let product = product.value;
    let o = &listing.overrides;
    let visible: Vec<&Variant> = variants.iter().map(|v| &v.value).filter(|v| is_visible(v, o)).collect();
    if product.status != ProductStatus::Active || visible.is_empty() {
        return Err(not_found());
    }
    let options = product
        .options
        .iter()
        .map(|option| PublicOption {
            name: option.name.clone(),
            values: option
                .values
                .iter()
                .filter(|value| visible.iter().any(|v| v.option_values.get(&option.id) == Some(&value.id)))
                .map(|value| value.value.clone())
                .collect(),
        })
        .collect();
    let public_variants: Vec<PublicVariant> = visible
        .iter()
        .map(|v| {
            let price = storefront_price(v, o);
            let shown = VariantResponse::new(&product.options, (*v).clone());
            let stock_state = if v.stock_quantity > 0 {
                StockState::InStock
            } else if v.inventory_policy == InventoryPolicy::Continue {
                StockState::Backorder
            } else {
                StockState::OutOfStock
            };
            PublicVariant {
                id: v.id.clone(),
                title: shown.title,
                options: shown
                    .options
                    .into_iter()
                    .map(|o| PublicOptionValue { option: o.option, value: o.value })
                    .collect(),
                price_minor: price,
                compare_at_price_minor: v.compare_at_price_minor.or((price < v.price_minor).then_some(v.price_minor)),
                in_stock: stock_state != StockState::OutOfStock,
                stock_state,
            }
        })
        .collect();
    let images = product
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Ready)
        .map(|i| PublicImage {
            url: app.config.asset_base_url.as_ref().map(|base| format!("{base}/{}", i.key)),
            alt: i.alt.clone(),
            variant_ids: i.variant_ids.iter().filter(|id| visible.iter().any(|v| &v.id == *id)).cloned().collect(),
        })
        .collect();
    Ok(PublicProduct {
        storefront: public_storefront(&storefront),
        images,
        id: product.id,
        handle: product.handle,
        title: o.title.clone().unwrap_or(product.title),
        description: product.description,
        tags: product.tags,
        attributes: product.attributes,
        currency: product.currency,
        options,
        price_min_minor: public_variants.iter().map(|v| v.price_minor).min(),
        price_max_minor: public_variants.iter().map(|v| v.price_minor).max(),
        in_stock: public_variants.iter().any(|v| v.in_stock),
        variants: public_variants,
    })
}
