//! HTTP handlers of the platform's Xero connection: connect, the OAuth redirect, the admin's
//! view, and Xero's webhook (a function URL).

use super::dto::*;
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, PlatformCtx, PublicCtx, RouteDef, schema};

const BASE: RouteDef = RouteDef {
    function: "",
    method: "GET",
    path: "",
    summary: "",
    handler: Handler::Platform { run: |ctx| Box::pin(get_connection(ctx)) },
    request: None,
    response: None,
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

pub const CONNECT: RouteDef = RouteDef {
    function: "xero-connect",
    method: "POST",
    path: "/xero/connect",
    summary: "Start connecting the platform's Xero organisation: the consent page to send the admin to (platform admin)",
    handler: Handler::Platform { run: |ctx| Box::pin(connect(ctx)) },
    response: Some(schema::<ConnectStarted>()),
    ..BASE
};

async fn connect(ctx: PlatformCtx) -> HandlerResult {
    ApiResponse::ok(&service::start_connect(&ctx.app).await?)
}

pub const CALLBACK: RouteDef = RouteDef {
    function: "xero-callback",
    method: "GET",
    path: "/xero/callback",
    summary: "Xero's OAuth redirect: takes the state, exchanges the code, reads the organisation, stores the tokens",
    handler: Handler::Public { run: |ctx| Box::pin(callback(ctx)) },
    response: Some(schema::<ConnectionView>()),
    ..BASE
};

async fn callback(ctx: PublicCtx) -> HandlerResult {
    ApiResponse::ok(&service::complete_connect(&ctx.app, &ctx.input.query_pairs()).await?)
}

pub const GET_CONNECTION: RouteDef = RouteDef {
    function: "xero-get",
    path: "/xero",
    summary: "The Xero connection: organisation, token expiry, refreshes and the last error (platform admin)",
    response: Some(schema::<ConnectionView>()),
    ..BASE
};

async fn get_connection(ctx: PlatformCtx) -> HandlerResult {
    ApiResponse::ok(&service::connection_view(&ctx.app).await?)
}

pub const WEBHOOK: RouteDef = RouteDef {
    function: "xero-webhook",
    method: "POST",
    path: "/webhooks/xero",
    summary: "Xero's invoice webhooks (function URL; x-xero-signature checked, 401 when wrong)",
    handler: Handler::Public { run: |ctx| Box::pin(webhook(ctx)) },
    response: Some(schema::<WebhookReceipt>()),
    ..BASE
};

async fn webhook(ctx: PublicCtx) -> HandlerResult {
    let receipt =
        service::receive_webhook(&ctx.app, ctx.input.body_bytes(), ctx.input.header("x-xero-signature")).await?;
    tracing::info!(queued = receipt.queued, ignored = receipt.ignored, "xero webhook");
    ApiResponse::ok(&receipt)
}
