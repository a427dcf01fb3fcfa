//! Use cases of the Shopify connection: install (OAuth), the vendor's view, webhooks, the
//! catalogue and stock mirror, and the shop orders of gift units.

use std::collections::{HashMap, HashSet};

use super::dto::{ConnectionView, InstallCompleted, InstallStarted, WebhookAccepted};
use super::jobs::{ShopifyOrder, ShopifySync, ShopifyWebhook, WebhookEvent};
use super::model::{
    self, ConnectionStatus, INSTALL_STATE_SECONDS, InstallState, REDIRECT_MAX_AGE_SECONDS, SOURCE, ShopifyConnection,
    WEBHOOK_TOPICS,
};
use super::repo::{self, ShopifyRepo, WebhookReceipt};
use crate::app::App;
use crate::audit::model::AuditEntry;
use crate::audit::repo::AuditLog;
use crate::catalog::model::{Product, ProductStatus, Variant};
use crate::catalog::repo::CatalogRepo;
use crate::error::{ApiError, FieldError};
use crate::fulfillment::model::{ExternalOrder, FulfillmentUnit};
use crate::integrations::shopify::operations::{self as shopify, NewAddress, NewLineItem, NewOrder, OrderCreated};
use crate::integrations::shopify::{
    self as client, ShopDomain, ShopifyApp, ShopifyClient, ShopifyCredentials, ShopifyError,
};
use crate::jobs::JobError;
use crate::jobs::records::{JobRecords, JobStatus};
use crate::orders::repo::OrderRepo;
use crate::store::{StoreError, Versioned, keys};
use crate::storefronts::service::refresh_listings;
use crate::tenancy::TenantScope;
use crate::vendors::repo::VendorRepo;
use crate::vendors::service::now_rfc3339;

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(epoch_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_s)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

async fn app_credentials(app: &App) -> Result<ShopifyApp, ApiError> {
    app.secrets.platform::<ShopifyApp>().await.map_err(ApiError::internal)
}

fn upstream(err: ShopifyError) -> ApiError {
    match err {
        ShopifyError::Unauthorized => {
            ApiError::Upstream("Shopify refused the shop's token: install the app again".into())
        }
        other => ApiError::Upstream(other.to_string()),
    }
}

fn job_error(err: ShopifyError) -> JobError {
    match err {
        ShopifyError::Unavailable(why) => JobError::Retryable(why),
        other => JobError::Permanent(other.to_string()),
    }
}

fn store_error(err: StoreError) -> JobError {
    JobError::Retryable(err.to_string())
}

// ---------------------------------------------------------------- install (OAuth)

/// Starts an install for the vendor's owner: a single-use nonce, and the consent page to send
/// them to. Nothing else is written, so an abandoned install leaves only an expiring nonce.
pub async fn start_install(app: &App, scope: &TenantScope, shop: &str) -> Result<InstallStarted, ApiError> {
    let shop = ShopDomain::parse(shop).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new("/shop", "must be the shop's <name>.myshopify.com domain")])
    })?;
    let redirect_uri = app
        .config
        .shopify_callback_url
        .as_deref()
        .ok_or_else(|| ApiError::internal("BESTOW_SHOPIFY_CALLBACK_URL is not set"))?;
    let app_creds = app_credentials(app).await?;
    let nonce = crate::store::ids::new_id() + &crate::store::ids::new_id();
    let expires_at = now_epoch() + INSTALL_STATE_SECONDS;
    let state = InstallState {
        owner_vendor: scope.vendor_id().to_string(),
        shop: shop.clone(),
        requested_by: scope.actor().user_id.clone(),
        expires_at,
    };
    let authorize_url =
        client::authorize_url(app.config.shopify_api_base.as_deref(), &shop, &app_creds, redirect_uri, &nonce)
            .map_err(ApiError::internal)?;
    ShopifyRepo::new(&app.table, scope).put_install_state(&nonce, &state).await?;
    Ok(InstallStarted { shop: shop.to_string(), authorize_url, expires_at: rfc3339(expires_at) })
}

/// Completes an install from Shopify's redirect: the `hmac` first (nothing unsigned is
/// looked at), then the nonce (taken once), then the code exchange; only then is anything
/// stored. Returns the connection and the sync it started.
pub async fn complete_install(app: &App, query: &[(String, String)]) -> Result<InstallCompleted, ApiError> {
    let app_creds = app_credentials(app).await?;
    if !client::query_is_signed(query, app_creds.api_secret.expose()) {
        return Err(ApiError::Unauthorized("the redirect's hmac does not match: it did not come from Shopify".into()));
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let shop = param("shop")
        .and_then(ShopDomain::parse)
        .ok_or_else(|| ApiError::BadRequest("the redirect names no <name>.myshopify.com shop".into()))?;
    let timestamp = param("timestamp").and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
    if (now_epoch() - timestamp).abs() > REDIRECT_MAX_AGE_SECONDS {
        return Err(ApiError::BadRequest("the redirect is too old; start the install again".into()));
    }
    let nonce = param("state")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the redirect has no state: start the install from Bestow".into()))?;
    let code = param("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the redirect has no authorization code".into()))?;
    let state = repo::take_install_state(&app.table, nonce, now_epoch())
        .await?
        .ok_or_else(|| ApiError::BadRequest("this install link was already used or has expired; start again".into()))?;
    if state.shop != shop {
        return Err(ApiError::BadRequest("the redirect is for another shop than the install was started for".into()));
    }
    let scope = crate::tenancy::guard::webhook_scope(&state.owner_vendor, "shopify-install")
        .map_err(|_| ApiError::internal("an install state names an invalid vendor"))?;
    // The shop must not be another vendor's before a token is even asked for.
    if let Some(lookup) = repo::shop_lookup(&app.table, &shop).await?
        && lookup.owner_vendor != state.owner_vendor
    {
        return Err(ApiError::Conflict("this shop is connected to another Bestow vendor".into()));
    }
    let credentials =
        client::exchange_code(&app.http(), app.config.shopify_api_base.as_deref(), &shop, &app_creds, code)
            .await
            .map_err(|err| match err {
                ShopifyError::Rejected(why) => ApiError::BadRequest(why),
                other => upstream(other),
            })?;
    let secret = app.secrets.put(&scope, &credentials).await?;
    let repo = ShopifyRepo::new(&app.table, &scope);
    let current = repo.connection().await?;
    let now = now_rfc3339();
    let connection = ShopifyConnection {
        shop: shop.clone(),
        status: ConnectionStatus::Connected,
        scope: credentials.scope.clone(),
        secrets: Some(secret),
        webhook_topics: Vec::new(),
        installed_at: now.clone(),
        uninstalled_at: None,
        // A re-install keeps the sync history.
        sync: current.as_ref().map(|c| c.value.sync.clone()).unwrap_or_default(),
        updated_at: now.clone(),
    };
    let audit = AuditEntry::by(&state.requested_by, "owner", "shopify.installed", "shopify".to_owned())
        .summary(format!("connected {shop} with scopes {}", credentials.scope));
    let mut writes = vec![
        repo.put_connection(&connection, current.as_ref().map(|c| c.version))?,
        repo.claim_shop(&shop)?,
        AuditLog::new(&app.table, &scope).transact_put(&audit)?,
    ];
    // Moving to another shop frees the previous one for whoever owns it now.
    if let Some(previous) = current.as_ref().map(|c| &c.value.shop).filter(|p| **p != shop) {
        writes.push(repo.transact_release_shop(previous)?);
    }
    app.table.transact(writes).await.map_err(|err| match err {
        StoreError::TransactionConditionFailed { failed } if failed.contains(&1) => {
            ApiError::Conflict("this shop is connected to another Bestow vendor".into())
        }
        StoreError::TransactionConditionFailed { .. } => {
            ApiError::Conflict("the connection changed during the install; start again".into())
        }
        other => other.into(),
    })?;
    let client = client_with(app, &credentials);
    let topics = subscribe_webhooks(app, &client).await;
    let connection = update_connection(app, &scope, |c| c.webhook_topics = topics.clone()).await?;
    let record = start_sync(app, &scope).await?;
    Ok(InstallCompleted {
        vendor_id: state.owner_vendor,
        shop: shop.to_string(),
        status: connection.status,
        webhook_topics: topics,
        sync_job_id: record.id,
    })
}

/// Subscribes the webhook function to every topic; a topic that fails is logged and left
/// out (the full sync still mirrors the shop; a re-install subscribes again).
async fn subscribe_webhooks(app: &App, client: &ShopifyClient) -> Vec<String> {
    let Some(url) = app.config.shopify_webhook_url.as_deref() else {
        tracing::error!("BESTOW_SHOPIFY_WEBHOOK_URL is not set: no webhooks subscribed");
        return Vec::new();
    };
    // At once: the redirect has API Gateway's 29 s, and each call may retry.
    let results =
        futures_util::future::join_all(WEBHOOK_TOPICS.iter().map(|topic| client.subscribe_webhook(topic, url))).await;
    let mut subscribed = Vec::new();
    for (topic, result) in WEBHOOK_TOPICS.iter().zip(results) {
        match result {
            Ok(()) => subscribed.push((*topic).to_owned()),
            Err(err) => tracing::warn!(topic, error = %err, "webhook not subscribed"),
        }
    }
    subscribed
}

fn client_with(app: &App, credentials: &ShopifyCredentials) -> ShopifyClient {
    ShopifyClient::new(
        app.http(),
        app.config.shopify_api_base.as_deref(),
        &credentials.shop,
        credentials.access_token.clone(),
    )
}

/// The vendor's connection and a client for its shop; `None` when not connected. A token
/// about to expire is refreshed first.
async fn connected_client(
    app: &App,
    scope: &TenantScope,
) -> Result<Option<(Versioned<ShopifyConnection>, ShopifyClient)>, JobError> {
    let connection = ShopifyRepo::new(&app.table, scope).connection().await.map_err(store_error)?;
    client_for(app, scope, connection).await
}

/// The client of a connection already read (`None`: not connected).
async fn client_for(
    app: &App,
    scope: &TenantScope,
    connection: Option<Versioned<ShopifyConnection>>,
) -> Result<Option<(Versioned<ShopifyConnection>, ShopifyClient)>, JobError> {
    let Some(connection) = connection else {
        return Ok(None);
    };
    let Some(secret) =
        connection.value.secrets.clone().filter(|_| connection.value.status == ConnectionStatus::Connected)
    else {
        return Ok(None);
    };
    let mut credentials: ShopifyCredentials =
        app.secrets.get(scope, &secret).await.map_err(|e| JobError::Retryable(e.to_string()))?;
    if credentials.needs_refresh(now_epoch()) {
        credentials = refresh_credentials(app, scope, &secret, &credentials).await?;
    }
    let client = client_with(app, &credentials);
    Ok(Some((connection, client)))
}

/// Refreshes an expiring token: the new token and refresh token are stored (a new secret
/// version) and the connection is pointed at them if it still names the version refreshed.
/// Two workers refreshing at once: a refusal is answered by the version another worker
/// stored meanwhile, if any (Shopify also keeps a used refresh token until its replacement
/// is used, so a refresh whose answer was lost can be repeated).
async fn refresh_credentials(
    app: &App,
    scope: &TenantScope,
    refreshed_from: &crate::integrations::secrets::SecretRef,
    credentials: &ShopifyCredentials,
) -> Result<ShopifyCredentials, JobError> {
    let app_creds = app.secrets.platform::<ShopifyApp>().await.map_err(|e| JobError::Retryable(e.to_string()))?;
    let base = app.config.shopify_api_base.as_deref();
    let fresh = match client::refresh(&app.http(), base, &app_creds, credentials).await {
        Ok(fresh) => fresh,
        Err(ShopifyError::Rejected(why)) => {
            let current = ShopifyRepo::new(&app.table, scope).connection().await.map_err(store_error)?;
            return match current.and_then(|c| c.value.secrets).filter(|s| s != refreshed_from) {
                Some(newer) => app.secrets.get(scope, &newer).await.map_err(|e| JobError::Retryable(e.to_string())),
                None => Err(JobError::Permanent(format!("{why}; install the app again"))),
            };
        }
        Err(other) => return Err(job_error(other)),
    };
    let stored = app.secrets.put(scope, &fresh).await.map_err(|e| JobError::Retryable(e.to_string()))?;
    let from = refreshed_from.clone();
    update_connection(app, scope, |c| {
        if c.secrets.as_ref() == Some(&from) {
            c.secrets = Some(stored.clone());
        }
    })
    .await
    .map_err(store_error)?;
    Ok(fresh)
}

/// Changes the connection item (read, change, conditional write; again on a race).
async fn update_connection(
    app: &App,
    scope: &TenantScope,
    change: impl Fn(&mut ShopifyConnection),
) -> Result<ShopifyConnection, StoreError> {
    update_connection_from(app, scope, None, change).await.map(|c| c.value)
}

/// [`update_connection`] starting from the connection as the caller read or wrote it (read
/// again only after a conflict); answers the connection as written.
async fn update_connection_from(
    app: &App,
    scope: &TenantScope,
    known: Option<Versioned<ShopifyConnection>>,
    change: impl Fn(&mut ShopifyConnection),
) -> Result<Versioned<ShopifyConnection>, StoreError> {
    let repo = ShopifyRepo::new(&app.table, scope);
    let mut known = known;
    for _ in 0..5 {
        let current = match known.take() {
            Some(current) => current,
            None => {
                repo.connection().await?.ok_or_else(|| StoreError::Corrupt("the Shopify connection is gone".into()))?
            }
        };
        let mut next = current.value.clone();
        change(&mut next);
        if next == current.value {
            return Ok(current);
        }
        next.updated_at = now_rfc3339();
        match app.table.transact(vec![repo.put_connection(&next, Some(current.version))?]).await {
            Ok(()) => return Ok(Versioned { value: next, version: current.version + 1 }),
            Err(StoreError::TransactionConditionFailed { .. }) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::Contention)
}

pub async fn connection_view(app: &App, scope: &TenantScope) -> Result<ConnectionView, ApiError> {
    let connection = ShopifyRepo::new(&app.table, scope).connection().await?;
    Ok(connection.map_or_else(ConnectionView::not_connected, |c| c.value.into()))
}

/// Starts a full catalogue sync as a job; returns the job's record as written.
pub async fn start_sync(app: &App, scope: &TenantScope) -> Result<crate::jobs::records::JobRecord, ApiError> {
    let connection = ShopifyRepo::new(&app.table, scope)
        .connection()
        .await?
        .ok_or_else(|| ApiError::Conflict("connect a Shopify shop first (POST …/shopify/install)".into()))?;
    if connection.value.status != ConnectionStatus::Connected {
        return Err(ApiError::Conflict("the Shopify app was uninstalled: install it again to sync".into()));
    }
    let job_id = crate::store::ids::new_id();
    let job = ShopifySync { job_id: job_id.clone() };
    crate::jobs::records::start_job(app, scope, job_id, &serde_json::json!({ "shop": connection.value.shop }), &job)
        .await
}

// ---------------------------------------------------------------- webhooks

/// Accepts one webhook delivery: the signature is checked on the raw body before anything is
/// parsed, the shop resolves the vendor, the delivery id deduplicates, and the work is queued
/// so Shopify gets its answer within its deadline.
pub async fn receive_webhook(
    app: &App,
    body: &[u8],
    header: impl Fn(&str) -> Option<String>,
) -> Result<WebhookAccepted, ApiError> {
    let app_creds = app_credentials(app).await?;
    if !client::webhook_is_signed(body, header("x-shopify-hmac-sha256").as_deref(), app_creds.api_secret.expose()) {
        return Err(ApiError::Unauthorized("the X-Shopify-Hmac-Sha256 check failed".into()));
    }
    let topic = header("x-shopify-topic").ok_or_else(|| ApiError::BadRequest("X-Shopify-Topic is missing".into()))?;
    let webhook_id =
        header("x-shopify-webhook-id").ok_or_else(|| ApiError::BadRequest("X-Shopify-Webhook-Id is missing".into()))?;
    let shop = header("x-shopify-shop-domain")
        .as_deref()
        .and_then(ShopDomain::parse)
        .ok_or_else(|| ApiError::BadRequest("X-Shopify-Shop-Domain is not a <name>.myshopify.com shop".into()))?;
    let payload: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let answer = |outcome: &str, duplicate: bool| WebhookAccepted {
        webhook_id: webhook_id.clone(),
        topic: topic.clone(),
        outcome: outcome.to_owned(),
        duplicate,
    };
    let Some(event) = WebhookEvent::from_delivery(&topic, shop.as_str(), &payload).map_err(ApiError::BadRequest)?
    else {
        return Ok(answer(&format!("ignored: {topic} is not a topic Bestow acts on"), false));
    };
    let Some(lookup) = repo::shop_lookup(&app.table, &shop).await? else {
        // A 200, so Shopify stops sending what no vendor will ever act on.
        return Ok(answer("ignored: the shop is not connected to Bestow", false));
    };
    let scope = crate::tenancy::guard::webhook_scope(&lookup.owner_vendor, "shopify")
        .map_err(|_| ApiError::internal("a shop lookup names an invalid vendor"))?;
    tracing::Span::current().record("vendor_id", scope.vendor_id().as_str());
    let repo = ShopifyRepo::new(&app.table, &scope);
    if repo.webhook_seen(&webhook_id).await? {
        return Ok(answer("already received", true));
    }
    // Queued before the receipt is recorded: a crash in between leaves a job (which runs once
    // per delivery id, however often it is queued) rather than a receipt without its job.
    let job = ShopifyWebhook { webhook_id: webhook_id.clone(), topic: topic.clone(), shop: shop.to_string(), event };
    app.jobs.enqueue(&scope, &job).await.map_err(ApiError::internal)?;
    let receipt = WebhookReceipt { webhook_id: webhook_id.clone(), topic: topic.clone(), received_at: now_rfc3339() };
    let first = repo.record_webhook(&receipt).await?;
    Ok(answer(if first { "queued" } else { "already received" }, !first))
}

/// Runs one webhook's effect (the `shopify_webhook` job).
pub async fn run_webhook(app: &App, scope: &TenantScope, job: &ShopifyWebhook) -> Result<serde_json::Value, JobError> {
    use serde_json::json;
    // A vendor that moved to another shop keeps the old shop's lookup until that shop's
    // redact: nothing the old shop sends may touch the vendor's current connection.
    let current = ShopifyRepo::new(&app.table, scope).connection().await.map_err(store_error)?;
    if let Some(connection) = &current
        && connection.value.shop.as_str() != job.shop
    {
        return Ok(json!({ "outcome": format!("ignored: {} is no longer this vendor's shop", job.shop) }));
    }
    match &job.event {
        WebhookEvent::Uninstalled => return uninstalled(app, scope).await.map(|o| json!({ "outcome": o })),
        WebhookEvent::DataRequest { request_id, customer_email, order_ids } => {
            return data_request(app, scope, request_id, customer_email.as_deref(), order_ids).await;
        }
        WebhookEvent::CustomerRedact { order_ids, .. } => return redact_customer(app, scope, order_ids).await,
        WebhookEvent::ShopRedact => return redact_shop(app, scope).await,
        WebhookEvent::OrderFulfilled { order_id, tags, carrier, tracking_number } => {
            return order_fulfilled(app, scope, order_id, tags, carrier.as_deref(), tracking_number.as_deref()).await;
        }
        WebhookEvent::OrderCancelled { order_id, tags, cancelled_at } => {
            return order_cancelled(app, scope, order_id, tags, cancelled_at.as_deref()).await;
        }
        _ => {}
    }
    let Some((connection, client)) = client_for(app, scope, current).await? else {
        return Ok(json!({ "outcome": "ignored: the shop is not connected" }));
    };
    let currency = vendor_currency(app, scope).await?;
    let outcome = match &job.event {
        WebhookEvent::Product { product_id, updated_at } => {
            let mirrored = CatalogRepo::new(&app.table, scope)
                .product(&model::mirrored_id(product_id))
                .await
                .map_err(store_error)?;
            let held = mirrored.as_ref().and_then(|p| p.value.external.clone());
            // An older delivery than the state held changes nothing, without asking Shopify.
            if let (Some(held), Some(incoming)) = (&held, updated_at)
                && (model::is_older(incoming, &held.updated_at) || *incoming == held.updated_at)
            {
                json!({ "outcome": "skipped: the mirror already holds this or a newer state" })
            } else {
                match client.product(&model::product_gid(product_id)).await.map_err(job_error)? {
                    Some(product) => {
                        let mut stats = SyncStats::default();
                        let held = mirrored.into_iter().collect();
                        apply_held_products(app, scope, &currency, &[product], held, &mut stats).await?;
                        json!({ "outcome": "applied", "stats": stats })
                    }
                    None => json!({ "outcome": archive_deleted(app, scope, product_id).await? }),
                }
            }
        }
        WebhookEvent::ProductDeleted { product_id } => {
            json!({ "outcome": archive_deleted(app, scope, product_id).await? })
        }
        WebhookEvent::Inventory { inventory_item_id } => {
            json!({ "outcome": inventory_changed(app, scope, &client, inventory_item_id).await? })
        }
        _ => unreachable!("handled above"),
    };
    let now = now_rfc3339();
    if let Err(err) =
        update_connection_from(app, scope, Some(connection), |c| c.sync.last_webhook_at = Some(now.clone())).await
    {
        tracing::warn!(error = %err, "last webhook time not recorded");
    }
    Ok(outcome)
}

async fn vendor_currency(app: &App, scope: &TenantScope) -> Result<String, JobError> {
    VendorRepo::new(&app.table, scope)
        .profile()
        .await
        .map_err(store_error)?
        .map(|v| v.value.currency)
        .ok_or_else(|| JobError::Permanent("the vendor is gone".into()))
}

/// The mirror of a product the shop deleted: archived (orders and listings may name it).
async fn archive_deleted(app: &App, scope: &TenantScope, product_number: &str) -> Result<String, JobError> {
    let catalog = CatalogRepo::new(&app.table, scope);
    for _ in 0..3 {
        let Some(current) = catalog.product(&model::mirrored_id(product_number)).await.map_err(store_error)? else {
            return Ok("ignored: the product was never mirrored".into());
        };
        if current.value.status == ProductStatus::Archived {
            return Ok("already archived".into());
        }
        let mut archived = current.value.clone();
        archived.status = ProductStatus::Archived;
        archived.updated_at = now_rfc3339();
        // A later sync that finds the product in the shop after all restores it.
        if let Some(external) = archived.external.as_mut() {
            external.digest = String::new();
        }
        let audit = AuditEntry::new(scope, "product.archived", format!("products/{}", archived.id))
            .versions(Some(current.version), Some(current.version + 1))
            .summary("deleted in Shopify");
        let writes = vec![
            catalog.put_product(&archived, Some(current.version)).map_err(store_error)?,
            AuditLog::new(&app.table, scope).transact_put(&audit).map_err(store_error)?,
        ];
        match app.table.transact(writes).await {
            Ok(()) => {
                refresh_listings(app, scope, &archived).await;
                return Ok("archived".into());
            }
            Err(StoreError::TransactionConditionFailed { .. }) => continue,
            Err(other) => return Err(store_error(other)),
        }
    }
    Err(JobError::Retryable("the product kept changing".into()))
}

/// Stock from the shop, for the variant of an inventory item: Shopify is the truth, so the
/// mirror takes the shop's total as it is now (which also makes late deliveries harmless).
async fn inventory_changed(
    app: &App,
    scope: &TenantScope,
    client: &ShopifyClient,
    inventory_item_number: &str,
) -> Result<String, JobError> {
    let Some(state) =
        client.inventory_item(&model::inventory_item_gid(inventory_item_number)).await.map_err(job_error)?
    else {
        return Ok("ignored: the shop has no such inventory item".into());
    };
    // One variant per inventory item today (the connection prepares for shared items).
    let Some(variant) = state.variants.nodes.into_iter().next() else {
        return Ok("ignored: the inventory item has no variant".into());
    };
    let (product_id, variant_id) = (model::mirrored_id(&variant.product.id), model::mirrored_id(&variant.id));
    let catalog = CatalogRepo::new(&app.table, scope);
    for _ in 0..3 {
        let Some(current) = catalog.variant(&product_id, &variant_id).await.map_err(store_error)? else {
            return Ok("ignored: the variant is not mirrored yet (the next sync brings it)".into());
        };
        let mut next = current.value.clone();
        next.stock_quantity = if state.tracked { variant.inventory_quantity.unwrap_or(0) } else { 0 };
        next.inventory_policy = if !state.tracked || variant.inventory_policy == "CONTINUE" {
            crate::catalog::model::InventoryPolicy::Continue
        } else {
            crate::catalog::model::InventoryPolicy::Deny
        };
        if next.stock_quantity == current.value.stock_quantity
            && next.inventory_policy == current.value.inventory_policy
        {
            return Ok("unchanged".into());
        }
        next.updated_at = now_rfc3339();
        let writes = vec![catalog.put_variant(&next, Some(current.version)).map_err(store_error)?];
        match app.table.transact(writes).await {
            Ok(()) => {
                if current.value.in_stock() != next.in_stock()
                    && let Some(product) = catalog.product(&product_id).await.map_err(store_error)?
                {
                    refresh_listings(app, scope, &product.value).await;
                }
                return Ok(format!("stock {} → {}", current.value.stock_quantity, next.stock_quantity));
            }
            Err(StoreError::TransactionConditionFailed { .. }) => continue,
            Err(other) => return Err(store_error(other)),
        }
    }
    Err(JobError::Retryable("the variant kept changing".into()))
}

/// The app was uninstalled: the token no longer works, so it is deleted and syncing stops;
/// the mirrored catalogue and every order stay.
async fn uninstalled(app: &App, scope: &TenantScope) -> Result<String, JobError> {
    if ShopifyRepo::new(&app.table, scope).connection().await.map_err(store_error)?.is_none() {
        return Ok("ignored: no connection".into());
    }
    // The token is only deleted once Shopify refuses it: a late delivery (after a re-install)
    // or a replayed one must not disconnect a shop that still has the app.
    if let Some((_, client)) = connected_client(app, scope).await?
        && client.token_works().await.map_err(job_error)?
    {
        return Ok("ignored: the shop's token still works (the app is installed)".into());
    }
    app.secrets.delete::<ShopifyCredentials>(scope).await.map_err(|e| JobError::Retryable(e.to_string()))?;
    let now = now_rfc3339();
    update_connection(app, scope, |c| {
        c.status = ConnectionStatus::Uninstalled;
        c.secrets = None;
        c.uninstalled_at.get_or_insert_with(|| now.clone());
    })
    .await
    .map_err(store_error)?;
    let audit =
        AuditEntry::new(scope, "shopify.uninstalled", "shopify".to_owned()).summary("app uninstalled in Shopify");
    AuditLog::new(&app.table, scope).record(&audit).await.map_err(store_error)?;
    Ok("uninstalled".into())
}

// ---------------------------------------------------------------- privacy topics

/// The units Bestow created shop orders for, by the shop's order numbers.
async fn units_of_shop_orders(
    app: &App,
    scope: &TenantScope,
    order_numbers: &[String],
) -> Result<Vec<Versioned<FulfillmentUnit>>, JobError> {
    let keys: Vec<_> = order_numbers.iter().map(|n| keys::shopify_order_key(scope, n)).collect();
    let links = app.table.batch_get(&keys).await.map_err(store_error)?;
    let orders = OrderRepo::new(&app.table, scope);
    let mut units = Vec::new();
    for item in links {
        let link: super::repo::ShopOrderLink = crate::store::decode(item).map_err(store_error)?.value;
        if let Some(unit) = orders.unit(&link.order_id, link.number).await.map_err(store_error)? {
            units.push(unit);
        }
    }
    Ok(units)
}

/// customers/data_request: what Bestow holds of that customer (the recipients of the shop
/// orders Bestow created), exported as JSON under the vendor's prefix for the vendor to send.
async fn data_request(
    app: &App,
    scope: &TenantScope,
    request_id: &str,
    customer_email: Option<&str>,
    order_numbers: &[String],
) -> Result<serde_json::Value, JobError> {
    let units = units_of_shop_orders(app, scope, order_numbers).await?;
    let records: Vec<_> = units
        .iter()
        .map(|u| {
            serde_json::json!({
                "unit_id": u.value.id, "recipient_name": u.value.recipient_name,
                "recipient_email": u.value.recipient_email, "address": u.value.address,
                "gift_message": u.value.gift_message, "thank_you_note": u.value.thank_you_note,
                "status": u.value.status, "shop_order": u.value.external_order,
            })
        })
        .collect();
    let export = serde_json::json!({
        "data_request_id": request_id, "customer_email": customer_email,
        "generated_at": now_rfc3339(), "records": records,
    });
    let bucket = app
        .config
        .documents_bucket
        .clone()
        .ok_or_else(|| JobError::Permanent("BESTOW_DOCUMENTS_BUCKET is not set".into()))?;
    let key = keys::shopify_data_request_object(scope, &model::gid_number(request_id).replace(['/', '.'], "-"));
    let body = serde_json::to_vec_pretty(&export).map_err(|e| JobError::Permanent(e.to_string()))?;
    app.s3()
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .content_type("application/json")
        .body(body.into())
        .send()
        .await
        .map_err(|e| {
            JobError::Retryable(format!("storing the export: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
        })?;
    let audit = AuditEntry::new(scope, "privacy.data_request", key.clone())
        .summary(format!("Shopify data request {request_id}: {} record(s) exported", records.len()));
    AuditLog::new(&app.table, scope).record(&audit).await.map_err(store_error)?;
    Ok(serde_json::json!({ "outcome": "exported", "key": key, "records": records.len() }))
}

/// customers/redact: the recipients' personal data on those units is erased (name, email,
/// address, messages); the unit, its items and money stay for the books.
async fn redact_customer(
    app: &App,
    scope: &TenantScope,
    order_numbers: &[String],
) -> Result<serde_json::Value, JobError> {
    let mut redacted = 0;
    for unit in units_of_shop_orders(app, scope, order_numbers).await? {
        let mut next = unit.value.clone();
        next.recipient_name = "[redacted]".into();
        next.recipient_email = format!("redacted+{}@invalid.example", next.id);
        next.address = None;
        next.gift_message = None;
        next.thank_you_note = None;
        if next == unit.value {
            continue;
        }
        next.updated_at = now_rfc3339();
        let audit = AuditEntry::new(
            scope,
            "privacy.customer_redacted",
            format!("orders/{}/units/{}", next.order_id, next.number),
        )
        .versions(Some(unit.version), Some(unit.version + 1));
        let writes = vec![
            OrderRepo::new(&app.table, scope).save_unit(&next, unit.version).map_err(store_error)?,
            AuditLog::new(&app.table, scope).transact_put(&audit).map_err(store_error)?,
        ];
        // A unit that changed meanwhile: the job's retry redacts it.
        app.table.transact(writes).await.map_err(store_error)?;
        redacted += 1;
    }
    Ok(serde_json::json!({ "outcome": "redacted", "units": redacted }))
}

/// shop/redact (48 hours after an uninstall): everything Bestow keeps about the shop itself
/// goes (the connection, its token, the shop lookup); the vendor's mirrored catalogue is the
/// vendor's and stays.
async fn redact_shop(app: &App, scope: &TenantScope) -> Result<serde_json::Value, JobError> {
    let repo = ShopifyRepo::new(&app.table, scope);
    let Some(connection) = repo.connection().await.map_err(store_error)? else {
        return Ok(serde_json::json!({ "outcome": "nothing held" }));
    };
    if connection.value.status == ConnectionStatus::Connected {
        // Shopify only sends it after an uninstall; a connected shop's request is stale.
        return Ok(serde_json::json!({ "outcome": "ignored: the shop is connected again" }));
    }
    app.secrets.delete::<ShopifyCredentials>(scope).await.map_err(|e| JobError::Retryable(e.to_string()))?;
    repo.release_shop(&connection.value.shop).await.map_err(store_error)?;
    repo.delete_connection(connection.version).await.map_err(store_error)?;
    let audit = AuditEntry::new(scope, "privacy.shop_redacted", "shopify".to_owned())
        .summary(format!("{} forgotten", connection.value.shop));
    AuditLog::new(&app.table, scope).record(&audit).await.map_err(store_error)?;
    Ok(serde_json::json!({ "outcome": "redacted" }))
}

// ---------------------------------------------------------------- the catalogue mirror

/// What a sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncStats {
    pub products: u64,
    pub variants: u64,
    pub products_written: u64,
    pub variants_written: u64,
    pub unchanged: u64,
    pub stale: u64,
    pub failed: u64,
}

/// Runs a full sync (the `shopify_sync` job): every product page, large products' further
/// variants, the mirror brought in line, then the mirrored products the shop no longer has
/// archived. A retry starts over, and finds what the first try wrote unchanged.
pub async fn run_full_sync(app: &App, scope: &TenantScope, job: &ShopifySync) -> Result<serde_json::Value, JobError> {
    let Some((connection, client)) = connected_client(app, scope).await? else {
        return Err(JobError::Permanent("the vendor has no connected Shopify shop".into()));
    };
    let records = JobRecords::new(&app.table, scope);
    let started = now_rfc3339();
    let connection = update_connection_from(app, scope, Some(connection), |c| {
        c.sync.last_job_id = Some(job.job_id.clone());
        c.sync.last_started_at = Some(started.clone());
        c.sync.last_status = Some("running".into());
    })
    .await
    .map_err(store_error)?;
    let currency = vendor_currency(app, scope).await?;
    let mut stats = SyncStats::default();
    let mut seen = HashSet::new();
    let mut errors = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0u32;
    let outcome: Result<(), JobError> = async {
        loop {
            let mut page = client.products_page(after.as_deref()).await.map_err(job_error)?;
            for product in &mut page.nodes {
                client.complete_variants(product).await.map_err(job_error)?;
                seen.insert(model::mirrored_id(&product.id));
            }
            errors.extend(apply_products(app, scope, &currency, &page.nodes, &mut stats).await?);
            pages += 1;
            // Progress every few pages: one UpdateItem per 80 products, not per page.
            if pages % PROGRESS_EVERY_PAGES == 1 {
                records
                    .progress(&job.job_id, JobStatus::Running, 0, stats.products, stats.failed)
                    .await
                    .map_err(store_error)?;
            }
            if !page.page_info.has_next_page {
                return Ok(());
            }
            if page.page_info.end_cursor.is_none() || page.page_info.end_cursor == after {
                return Err(JobError::Retryable("Shopify's product pages do not advance".into()));
            }
            after = page.page_info.end_cursor.clone();
        }
    }
    .await;
    if let Err(err) = outcome {
        let now = now_rfc3339();
        let message = err.to_string();
        if let Err(store) = update_connection(app, scope, |c| {
            c.sync.last_status = Some("failed".into());
            c.sync.last_finished_at = Some(now.clone());
            c.sync.record_error(&now, message.clone());
        })
        .await
        {
            tracing::warn!(error = %store, "sync failure not recorded");
        }
        return Err(err);
    }
    let archived = archive_missing(app, scope, &seen, &started).await?;
    let client_stats = client.stats();
    let finished = now_rfc3339();
    let status = if errors.is_empty() { "completed" } else { "completed_with_errors" };
    // From the connection as this sync wrote it; a webhook's write meanwhile means a read again.
    update_connection_from(app, scope, Some(connection), |c| {
        c.sync.last_status = Some(status.into());
        c.sync.last_finished_at = Some(finished.clone());
        c.sync.products = stats.products;
        c.sync.variants = stats.variants;
        c.sync.products_written = stats.products_written;
        c.sync.variants_written = stats.variants_written;
        c.sync.products_archived = archived;
        for error in &errors {
            c.sync.record_error(&finished, error.clone());
        }
    })
    .await
    .map_err(store_error)?;
    Ok(serde_json::json!({
        "status": status,
        "stats": stats,
        "archived": archived,
        "shopify": client_stats,
        "errors": errors,
    }))
}

/// Archives mirrored products the shop no longer has (one Query page per 100 products); a
/// product written since the sync started (a webhook's new product) is not judged by it.
async fn archive_missing(
    app: &App,
    scope: &TenantScope,
    seen: &HashSet<String>,
    started: &str,
) -> Result<u64, JobError> {
    let catalog = CatalogRepo::new(&app.table, scope);
    let mut cursor = None;
    let mut archived = 0;
    loop {
        let (products, next) = catalog.products(100, cursor.as_ref()).await.map_err(store_error)?;
        for product in products {
            let p = &product.value;
            let written_since = !model::is_older(&p.updated_at, started);
            if p.synced_from() == Some(SOURCE)
                && p.status != ProductStatus::Archived
                && !seen.contains(&p.id)
                && !written_since
            {
                archive_deleted(
                    app,
                    scope,
                    model::gid_number(&p.external.as_ref().map_or(p.id.clone(), |e| e.id.clone())),
                )
                .await?;
                archived += 1;
            }
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(archived),
        }
    }
}

/// Brings the mirror in line with a batch of the shop's products (each with all its
/// variants): one BatchGetItem for the products held; for each product whose digest differs,
/// one Query for its variants; the changed variants in ⌈n/25⌉ batch writes, then the products
/// (with their handle claims and audit entries) in transactions. Unchanged products cost no
/// write. Returns the products refused, as messages.
pub async fn apply_products(
    app: &App,
    scope: &TenantScope,
    currency: &str,
    batch: &[shopify::Product],
    stats: &mut SyncStats,
) -> Result<Vec<String>, JobError> {
    let ids: Vec<String> = batch.iter().map(|p| model::mirrored_id(&p.id)).collect();
    let held = CatalogRepo::new(&app.table, scope).products_by_id(&ids).await.map_err(store_error)?;
    apply_held_products(app, scope, currency, batch, held, stats).await
}

/// [`apply_products`] when the caller has read the batch's mirrored products (`held`: those
/// that exist).
async fn apply_held_products(
    app: &App,
    scope: &TenantScope,
    currency: &str,
    batch: &[shopify::Product],
    held: Vec<Versioned<Product>>,
    stats: &mut SyncStats,
) -> Result<Vec<String>, JobError> {
    let catalog = CatalogRepo::new(&app.table, scope);
    let held: HashMap<String, Versioned<Product>> = held.into_iter().map(|p| (p.value.id.clone(), p)).collect();
    let now = now_rfc3339();
    let mut errors = Vec::new();
    let mut variant_writes: Vec<Versioned<Variant>> = Vec::new();
    let mut product_writes: Vec<(Product, Option<Versioned<Product>>, &shopify::Product)> = Vec::new();
    for src in batch {
        stats.products += 1;
        stats.variants += src.variants.nodes.len() as u64;
        let id = model::mirrored_id(&src.id);
        let existing = held.get(&id);
        if let Some(ext) = existing.and_then(|p| p.value.external.as_ref()) {
            if ext.digest == model::digest(src, currency) {
                stats.unchanged += 1;
                continue;
            }
            if model::is_older(&src.updated_at, &ext.updated_at) {
                stats.stale += 1;
                continue;
            }
        }
        let existing_variants: Vec<Versioned<Variant>> = match existing {
            Some(_) => catalog.all_variants(&id).await.map_err(store_error)?,
            None => Vec::new(),
        };
        let plain: Vec<Variant> = existing_variants.iter().map(|v| v.value.clone()).collect();
        let handle = existing.map_or_else(|| model::wanted_handle(src), |p| p.value.handle.clone());
        let mapped = match model::map_product(src, currency, &handle, existing.map(|p| &p.value), &plain, &now) {
            Ok(mapped) => mapped,
            Err(why) => {
                stats.failed += 1;
                errors.push(format!("product {}: {why}", model::gid_number(&src.id)));
                continue;
            }
        };
        for mut variant in mapped.variants {
            let before = existing_variants.iter().find(|v| v.value.id == variant.id);
            if before.is_some_and(|b| b.value == variant) {
                continue;
            }
            variant.updated_at = now.clone();
            variant_writes.push(Versioned { version: before.map_or(0, |b| b.version), value: variant });
        }
        let mut product = mapped.product;
        if existing.is_some_and(|e| e.value == product) {
            continue;
        }
        product.updated_at = now.clone();
        product_writes.push((product, existing.cloned(), src));
    }
    // Variants first: a product whose write fails is retried whole by the next sync, since
    // its stored digest is still the old one. New variants go in ⌈n/25⌉ batch writes;
    // changed ones in transactions conditioned on the version read, so a stock movement or a
    // webhook that wrote since is never overwritten: that product waits for the next sync.
    let (new, changed): (Vec<_>, Vec<_>) = variant_writes.into_iter().partition(|v| v.version == 0);
    stats.variants_written += new.len() as u64;
    catalog.batch_put_variants(&new).await.map_err(store_error)?;
    let mut conflicted = HashSet::new();
    let mut by_product: Vec<(String, Vec<Versioned<Variant>>)> = Vec::new();
    for variant in changed {
        match by_product.iter_mut().find(|(id, _)| *id == variant.value.product_id) {
            Some((_, list)) => list.push(variant),
            None => by_product.push((variant.value.product_id.clone(), vec![variant])),
        }
    }
    for (product_id, variants) in &by_product {
        for chunk in variants.chunks(VARIANTS_PER_TRANSACTION) {
            let items = chunk
                .iter()
                .map(|v| catalog.put_variant(&v.value, Some(v.version)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(store_error)?;
            match app.table.transact(items).await {
                Ok(()) => stats.variants_written += chunk.len() as u64,
                Err(StoreError::TransactionConditionFailed { .. }) => {
                    conflicted.insert(product_id.clone());
                    break;
                }
                Err(other) => return Err(store_error(other)),
            }
        }
    }
    if !conflicted.is_empty() {
        stats.stale += conflicted.len() as u64;
        product_writes.retain(|(p, _, _)| !conflicted.contains(&p.id));
    }
    for chunk in product_writes.chunks(PRODUCTS_PER_TRANSACTION) {
        let mut items = Vec::with_capacity(chunk.len() * 3);
        for (product, existing, _) in chunk {
            items.extend(product_items(app, scope, product, existing.as_ref()).map_err(store_error)?);
        }
        match app.table.transact(items).await {
            Ok(()) => {}
            // One product at a time: a handle taken by the vendor's own product gets the
            // fallback; a product changed meanwhile (a webhook) is left to that writer.
            Err(StoreError::TransactionConditionFailed { .. }) => {
                for (product, existing, src) in chunk {
                    if let Err(why) = write_product_alone(app, scope, product, existing.as_ref(), src).await? {
                        stats.failed += 1;
                        errors.push(why);
                    }
                }
            }
            Err(other) => return Err(store_error(other)),
        }
        for (product, _, _) in chunk {
            refresh_listings(app, scope, product).await;
        }
    }
    stats.products_written += product_writes.len() as u64;
    Ok(errors)
}

/// A full sync reports its progress on the job resource every this many pages.
const PROGRESS_EVERY_PAGES: u32 = 10;

/// Changed variants of one product per transaction (DynamoDB's limit).
const VARIANTS_PER_TRANSACTION: usize = 100;

/// Products per transaction: each is up to 4 items (itself, the new handle's claim, the old
/// handle's release, the audit entry), within DynamoDB's 100.
const PRODUCTS_PER_TRANSACTION: usize = 25;

fn product_items(
    app: &App,
    scope: &TenantScope,
    product: &Product,
    existing: Option<&Versioned<Product>>,
) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
    let catalog = CatalogRepo::new(&app.table, scope);
    let mut items = vec![catalog.put_product(product, existing.map(|e| e.version))?];
    match existing {
        None => items.push(catalog.claim_handle(&product.handle, &product.id)?),
        Some(e) if e.value.handle != product.handle => {
            items.push(catalog.claim_handle(&product.handle, &product.id)?);
            items.push(catalog.release_handle(&e.value.handle, &product.id)?);
        }
        Some(_) => {}
    }
    let action = if existing.is_some() { "product.synced" } else { "product.imported" };
    let audit = AuditEntry::new(scope, action, format!("products/{}", product.id))
        .versions(existing.map(|e| e.version), Some(existing.map_or(1, |e| e.version + 1)))
        .summary("from Shopify");
    items.push(AuditLog::new(&app.table, scope).transact_put(&audit)?);
    Ok(items)
}

/// Writes one product on its own; a new product whose handle the vendor already uses gets the
/// fallback handle. `Ok(Err(why))` when it cannot be written now.
async fn write_product_alone(
    app: &App,
    scope: &TenantScope,
    product: &Product,
    existing: Option<&Versioned<Product>>,
    src: &shopify::Product,
) -> Result<Result<(), String>, JobError> {
    let mut product = product.clone();
    for attempt in 0..2 {
        match app.table.transact(product_items(app, scope, &product, existing).map_err(store_error)?).await {
            Ok(()) => return Ok(Ok(())),
            Err(StoreError::TransactionConditionFailed { failed }) if failed.contains(&1) && attempt == 0 => {
                product.handle = model::fallback_handle(src);
            }
            Err(StoreError::TransactionConditionFailed { .. }) => {
                return Ok(Err(format!(
                    "product {}: changed while syncing; the next sync or webhook brings it",
                    model::gid_number(&src.id)
                )));
            }
            Err(other) => return Err(store_error(other)),
        }
    }
    Ok(Err(format!("product {}: no free handle", model::gid_number(&src.id))))
}

// ---------------------------------------------------------------- shop orders of gift units

/// Queues the shop orders of units whose address is settled (accepted by the recipient, or
/// given by the buyer) and whose items all are mirrored from Shopify (a unit with items of the
/// vendor's own is packed and shipped in Bestow, all of it); returns how many. `units` are
/// the units with the version they were (or are being) saved at. One read of the
/// connection, one SQS call per ten units.
pub async fn order_settled_units(
    app: &App,
    scope: &TenantScope,
    units: &[(&FulfillmentUnit, u64)],
) -> Result<usize, StoreError> {
    let jobs: Vec<ShopifyOrder> = units
        .iter()
        .filter(|(u, _)| u.status == crate::fulfillment::model::UnitStatus::Ready && u.external_order.is_none())
        .filter(|(u, _)| u.lines.iter().all(|l| l.variant_id.starts_with(model::MIRRORED_PREFIX)))
        .map(|(u, version)| ShopifyOrder { order_id: u.order_id.clone(), number: u.number, unit_version: *version })
        .collect();
    if jobs.is_empty() {
        return Ok(0);
    }
    let connected = ShopifyRepo::new(&app.table, scope)
        .connection()
        .await?
        .is_some_and(|c| c.value.status == ConnectionStatus::Connected);
    if !connected {
        return Ok(0);
    }
    app.jobs.enqueue_batch(scope, &jobs).await.map_err(|e| StoreError::Sdk(e.to_string()))?;
    Ok(jobs.len())
}

/// Creates the shop order of a unit (the `shopify_order` job), once: an order an earlier try
/// created is found by the unit's tag before anything is created.
pub async fn create_shop_order(
    app: &App,
    scope: &TenantScope,
    job: &ShopifyOrder,
) -> Result<serde_json::Value, JobError> {
    use serde_json::json;
    let orders = OrderRepo::new(&app.table, scope);
    let Some(unit) = orders.unit(&job.order_id, job.number).await.map_err(store_error)? else {
        return Err(JobError::Permanent("no such unit".into()));
    };
    if let Some(existing) = unit.value.external_order.as_ref().filter(|o| !o.id.is_empty()) {
        return Ok(json!({ "outcome": "already ordered", "shop_order": existing.name }));
    }
    if unit.value.external_order.is_none() && unit.value.status != crate::fulfillment::model::UnitStatus::Ready {
        return Ok(json!({ "outcome": format!("skipped: the unit is {}", unit.value.status.as_str()) }));
    }
    let Some((_, client)) = connected_client(app, scope).await? else {
        return Err(JobError::Permanent("the vendor's Shopify shop is not connected".into()));
    };
    // The unit is frozen first (an order pending): from here on the recipient cannot swap
    // what the shop is about to be asked for, and a retry knows an order may exist.
    let unit = match &unit.value.external_order {
        Some(_) => unit,
        None => {
            let mut pending = unit.value.clone();
            pending.external_order = Some(ExternalOrder::pending(SOURCE));
            pending.updated_at = now_rfc3339();
            let writes = vec![orders.save_unit(&pending, unit.version).map_err(store_error)?];
            match app.table.transact(writes).await {
                Ok(()) => Versioned { value: pending, version: unit.version + 1 },
                // Changed meanwhile (a swap): the change's own job orders it.
                Err(StoreError::TransactionConditionFailed { .. }) => {
                    return Ok(json!({ "outcome": "skipped: the unit changed; its newer job orders it" }));
                }
                Err(other) => return Err(store_error(other)),
            }
        }
    };
    let catalog = CatalogRepo::new(&app.table, scope);
    let mut line_items = Vec::new();
    for line in &unit.value.lines {
        let variant = catalog.variant(&line.product_id, &line.variant_id).await.map_err(store_error)?;
        if let Some(external) = variant.and_then(|v| v.value.external) {
            line_items.push(NewLineItem { variant_id: external.id, quantity: line.quantity });
        }
    }
    if line_items.is_empty() {
        return Ok(json!({ "outcome": "skipped: no mirrored items" }));
    }
    let tag = model::unit_tag(&unit.value.id);
    let found = client.orders_tagged(&tag).await.map_err(job_error)?.into_iter().next();
    let order = match found {
        Some(order) => order,
        None => {
            let address =
                unit.value.address.clone().ok_or_else(|| JobError::Permanent("the unit has no address".into()))?;
            let (first_name, last_name) = split_name(&unit.value.recipient_name);
            let new_order = NewOrder {
                line_items,
                email: Some(unit.value.recipient_email.clone()),
                shipping_address: NewAddress {
                    first_name,
                    last_name,
                    address1: address.line1,
                    address2: address.line2,
                    city: address.city,
                    province_code: address.region,
                    zip: address.postal_code,
                    country_code: address.country,
                    phone: None,
                },
                tags: vec!["bestow".into(), tag.clone()],
                source_identifier: unit.value.id.clone(),
                note: Some(format!("Bestow gift {} (order {})", unit.value.id, unit.value.order_id)),
                financial_status: "PAID",
            };
            match client.create_order(&new_order).await.map_err(job_error)? {
                OrderCreated::Created(order) => order,
                OrderCreated::Refused(why) => {
                    // Nothing was created: the unit is free again (the recipient may choose
                    // another variant; that acceptance queues a new order).
                    release_pending(app, scope, &unit).await?;
                    let now = now_rfc3339();
                    let message = format!("unit {}: the shop refused its order: {why}", unit.value.id);
                    if let Err(err) =
                        update_connection(app, scope, |c| c.sync.record_error(&now, message.clone())).await
                    {
                        tracing::warn!(error = %err, "order refusal not recorded");
                    }
                    return Err(JobError::Permanent(message));
                }
            }
        }
    };
    record_shop_order(app, scope, &job.order_id, job.number, &order).await?;
    Ok(json!({ "outcome": "ordered", "shop_order": order.name }))
}

async fn release_pending(app: &App, scope: &TenantScope, unit: &Versioned<FulfillmentUnit>) -> Result<(), JobError> {
    let mut free = unit.value.clone();
    free.external_order = None;
    free.updated_at = now_rfc3339();
    let writes = vec![OrderRepo::new(&app.table, scope).save_unit(&free, unit.version).map_err(store_error)?];
    match app.table.transact(writes).await {
        Ok(()) | Err(StoreError::TransactionConditionFailed { .. }) => Ok(()),
        Err(other) => Err(store_error(other)),
    }
}

fn split_name(full: &str) -> (String, String) {
    match full.trim().rsplit_once(' ') {
        Some((first, last)) => (first.trim().to_owned(), last.trim().to_owned()),
        None => (String::new(), full.trim().to_owned()),
    }
}

/// Notes the shop order on the unit (which freezes it) with the link from the shop's order
/// number back to the unit, for the privacy topics.
async fn record_shop_order(
    app: &App,
    scope: &TenantScope,
    order_id: &str,
    number: u32,
    order: &shopify::OrderRef,
) -> Result<(), JobError> {
    let orders = OrderRepo::new(&app.table, scope);
    let repo = ShopifyRepo::new(&app.table, scope);
    for _ in 0..5 {
        let Some(unit) = orders.unit(order_id, number).await.map_err(store_error)? else {
            return Err(JobError::Permanent("the unit is gone".into()));
        };
        if unit.value.external_order.as_ref().is_some_and(|o| !o.id.is_empty()) {
            return Ok(());
        }
        let mut next = unit.value.clone();
        next.external_order = Some(ExternalOrder {
            source: SOURCE.into(),
            id: order.id.clone(),
            name: order.name.clone(),
            cancelled_at: None,
        });
        next.updated_at = now_rfc3339();
        let audit = AuditEntry::new(scope, "unit.shop_ordered", format!("orders/{order_id}/units/{number}"))
            .versions(Some(unit.version), Some(unit.version + 1))
            .summary(format!("Shopify order {}", order.name));
        let writes = vec![
            orders.save_unit(&next, unit.version).map_err(store_error)?,
            repo.put_order_link(model::gid_number(&order.id), order_id, number).map_err(store_error)?,
            AuditLog::new(&app.table, scope).transact_put(&audit).map_err(store_error)?,
        ];
        match app.table.transact(writes).await {
            Ok(()) => return Ok(()),
            Err(StoreError::TransactionConditionFailed { .. }) => continue,
            Err(other) => return Err(store_error(other)),
        }
    }
    Err(JobError::Retryable("the unit kept changing".into()))
}

/// The unit a shop order of Bestow's stands for: named by the order's tag, and only if the
/// unit recorded that very order.
async fn unit_of_shop_order(
    app: &App,
    scope: &TenantScope,
    order_gid: &str,
    tags: &str,
) -> Result<Option<Versioned<FulfillmentUnit>>, JobError> {
    let Some((order_id, number)) = model::unit_of_tags(tags).and_then(FulfillmentUnit::parse_id) else {
        return Ok(None);
    };
    let unit = OrderRepo::new(&app.table, scope).unit(order_id, number).await.map_err(store_error)?;
    Ok(unit.filter(|u| u.value.external_order.as_ref().is_some_and(|o| o.id == order_gid)))
}

/// orders/fulfilled: the shop shipped a unit's order, so the unit is shipped with the shop's
/// tracking (and the recipient gets the shipment email, as for any shipment).
async fn order_fulfilled(
    app: &App,
    scope: &TenantScope,
    order_gid: &str,
    tags: &str,
    carrier: Option<&str>,
    tracking_number: Option<&str>,
) -> Result<serde_json::Value, JobError> {
    use crate::fulfillment::dto::{FulfilRequest, FulfilUnit};
    use crate::fulfillment::model::{FulfilAction, UnitStatus};
    let Some(unit) = unit_of_shop_order(app, scope, order_gid, tags).await? else {
        return Ok(serde_json::json!({ "outcome": "ignored: not an order Bestow created" }));
    };
    if matches!(unit.value.status, UnitStatus::Shipped | UnitStatus::Delivered) {
        return Ok(serde_json::json!({ "outcome": "already shipped" }));
    }
    let request = FulfilRequest {
        action: FulfilAction::Ship,
        units: vec![FulfilUnit {
            unit_id: unit.value.id.clone(),
            carrier: Some(carrier.filter(|c| !c.trim().is_empty()).unwrap_or("Shopify").to_owned()),
            tracking_number: Some(
                tracking_number
                    .filter(|t| !t.trim().is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| model::gid_number(order_gid).to_owned()),
            ),
        }],
    };
    match crate::fulfillment::service::fulfil(app, scope, request).await {
        Ok(_) => Ok(serde_json::json!({ "outcome": "shipped", "unit_id": unit.value.id })),
        Err(ApiError::Validation { detail, .. }) => Err(JobError::Permanent(detail)),
        Err(other) => Err(JobError::Retryable(other.to_string())),
    }
}

/// orders/cancelled: the shop will not ship the unit; noted on the unit and in the audit log
/// for the vendor to settle (refund, or a new order).
async fn order_cancelled(
    app: &App,
    scope: &TenantScope,
    order_gid: &str,
    tags: &str,
    cancelled_at: Option<&str>,
) -> Result<serde_json::Value, JobError> {
    let Some(unit) = unit_of_shop_order(app, scope, order_gid, tags).await? else {
        return Ok(serde_json::json!({ "outcome": "ignored: not an order Bestow created" }));
    };
    let mut next = unit.value.clone();
    if let Some(order) = next.external_order.as_mut() {
        if order.cancelled_at.is_some() {
            return Ok(serde_json::json!({ "outcome": "already cancelled" }));
        }
        order.cancelled_at = Some(cancelled_at.map_or_else(now_rfc3339, str::to_owned));
    }
    next.updated_at = now_rfc3339();
    let audit =
        AuditEntry::new(scope, "unit.shop_order_cancelled", format!("orders/{}/units/{}", next.order_id, next.number))
            .versions(Some(unit.version), Some(unit.version + 1))
            .summary("the Shopify order was cancelled: refund the unit or order it again");
    let writes = vec![
        OrderRepo::new(&app.table, scope).save_unit(&next, unit.version).map_err(store_error)?,
        AuditLog::new(&app.table, scope).transact_put(&audit).map_err(store_error)?,
    ];
    app.table.transact(writes).await.map_err(store_error)?;
    Ok(serde_json::json!({ "outcome": "noted", "unit_id": next.id }))
}
