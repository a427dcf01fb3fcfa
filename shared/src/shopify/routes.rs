//! HTTP handlers of the Shopify connection: the install and its OAuth redirect, the vendor's
//! view and manual sync, and the webhook endpoint (a function URL).

use super::dto::*;
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, PublicCtx, RouteDef, TenantCtx, schema};
use crate::jobs::records::JobRecord;
use crate::tenancy::Role;

/// Connecting a shop hands Bestow a token to the vendor's store: owners only.
const OWNERS: &[Role] = &[Role::PlatformAdmin, Role::Owner];
const MANAGERS: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager];

const BASE: RouteDef = RouteDef {
    function: "",
    method: "GET",
    path: "",
    summary: "",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(get_connection(ctx)) },
    request: None,
    response: None,
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

pub const INSTALL: RouteDef = RouteDef {
    function: "shopify-install",
    method: "POST",
    path: "/vendors/{vendorId}/shopify/install",
    summary: "Start connecting a Shopify shop: the consent page to send the owner to (OAuth, offline token)",
    handler: Handler::Tenant { roles: OWNERS, run: |ctx| Box::pin(install(ctx)) },
    request: Some(schema::<InstallRequest>()),
    response: Some(schema::<InstallStarted>()),
    ..BASE
};

async fn install(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<InstallRequest>()?;
    ApiResponse::ok(&service::start_install(&ctx.app, &ctx.scope, &req.shop).await?)
}

pub const CALLBACK: RouteDef = RouteDef {
    function: "shopify-callback",
    method: "GET",
    path: "/shopify/callback",
    summary: "Shopify's OAuth redirect: checks hmac and state, stores the token, subscribes webhooks, starts a sync",
    handler: Handler::Public { run: |ctx| Box::pin(callback(ctx)) },
    response: Some(schema::<InstallCompleted>()),
    ..BASE
};

async fn callback(ctx: PublicCtx) -> HandlerResult {
    let completed = service::complete_install(&ctx.app, &ctx.input.query_pairs()).await?;
    tracing::info!(vendor_id = %completed.vendor_id, shop = %completed.shop, "shopify connected");
    ApiResponse::ok(&completed)
}

pub const GET_CONNECTION: RouteDef = RouteDef {
    function: "shopify-get",
    method: "GET",
    path: "/vendors/{vendorId}/shopify",
    summary: "The Shopify connection: status, last sync, counts and recent errors",
    response: Some(schema::<ConnectionView>()),
    ..BASE
};

async fn get_connection(ctx: TenantCtx) -> HandlerResult {
    ApiResponse::ok(&service::connection_view(&ctx.app, &ctx.scope).await?)
}

pub const SYNC: RouteDef = RouteDef {
    function: "shopify-sync-start",
    method: "POST",
    path: "/vendors/{vendorId}/shopify/sync",
    summary: "Re-sync the whole catalogue from Shopify, as a job",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(sync(ctx)) },
    response: Some(schema::<JobRecord>()),
    success: 202,
    ..BASE
};

async fn sync(ctx: TenantCtx) -> HandlerResult {
    let record = service::start_sync(&ctx.app, &ctx.scope).await?;
    ApiResponse::json(202, &record)
        .map(|r| r.with_location(format!("/vendors/{}/jobs/{}", ctx.scope.vendor_id(), record.id)))
}

/// Shopify's webhook endpoint for every shop: `https://<function URL>/webhooks/shopify`. The
/// HMAC is the authentication; the shop header names the vendor.
pub const WEBHOOK: RouteDef = RouteDef {
    function: "shopify-webhook",
    method: "POST",
    path: "/webhooks/shopify",
    summary: "Shopify webhooks of every connected shop (function URL; X-Shopify-Hmac-Sha256 checked)",
    handler: Handler::Public { run: |ctx| Box::pin(webhook(ctx)) },
    response: Some(schema::<WebhookAccepted>()),
    ..BASE
};

async fn webhook(ctx: PublicCtx) -> HandlerResult {
    let accepted =
        service::receive_webhook(&ctx.app, ctx.input.body_bytes(), |name| ctx.input.header(name).map(str::to_owned))
            .await?;
    tracing::info!(webhook_id = %accepted.webhook_id, topic = %accepted.topic, outcome = %accepted.outcome, duplicate = accepted.duplicate, "shopify webhook");
    ApiResponse::ok(&accepted)
}
