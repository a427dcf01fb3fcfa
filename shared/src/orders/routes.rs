//! HTTP handlers of orders (one `RouteDef` per Lambda function) and the Stripe webhook, which
//! arrives on a function URL rather than through API Gateway.

use super::dto::*;
use super::service::{self, WebhookOutcome};
use crate::error::ApiError;
use crate::http::{ApiResponse, Handler, HandlerResult, PublicCtx, RouteDef, TenantCtx, schema};
use crate::tenancy::Role;

/// Staff see every order; a buyer sees the orders they placed.
const READERS: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager, Role::Fulfillment, Role::Buyer];
const BUYERS: &[Role] = &[Role::Buyer, Role::Owner, Role::Manager];
/// Money goes back: the vendor's managers decide.
const MANAGERS: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager];

/// A checkout of 10,000 recipients is about 3 MB of JSON; Lambda takes 6 MB.
const CHECKOUT_MAX_BYTES: usize = 6 * 1024 * 1024;

const BASE: RouteDef = RouteDef {
    function: "",
    method: "GET",
    path: "",
    summary: "",
    handler: Handler::Tenant { roles: READERS, run: |ctx| Box::pin(list_orders(ctx)) },
    request: None,
    response: None,
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

pub const CREATE_ORDER: RouteDef = RouteDef {
    function: "orders-create",
    method: "POST",
    path: "/vendors/{vendorId}/storefronts/{storefrontId}/orders",
    summary: "Check out a gift order for 1 to 10,000 recipients: totals, stock, and a Stripe PaymentIntent",
    handler: Handler::Tenant { roles: BUYERS, run: |ctx| Box::pin(create_order(ctx)) },
    request: Some(schema::<CheckoutRequest>()),
    response: Some(schema::<CheckoutResponse>()),
    success: 201,
    idempotent: true,
    ..BASE
};

async fn create_order(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json_within::<CheckoutRequest>(CHECKOUT_MAX_BYTES)?;
    let created = service::checkout(&ctx.app, &ctx.scope, ctx.input.path("storefrontId")?, req).await?;
    let location = format!("/vendors/{}/orders/{}", ctx.scope.vendor_id(), created.order.id);
    Ok(ApiResponse::json(201, &created)?.with_location(location).with_etag(1))
}

pub const LIST_ORDERS: RouteDef = RouteDef {
    function: "orders-list",
    path: "/vendors/{vendorId}/orders",
    summary: "List orders, newest first (a buyer sees their own)",
    response: Some(schema::<OrderList>()),
    paginated: true,
    ..BASE
};

async fn list_orders(ctx: TenantCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(&service::list_orders(&ctx.app, &ctx.scope, limit, cursor).await?)
}

pub const GET_ORDER: RouteDef = RouteDef {
    function: "orders-get",
    path: "/vendors/{vendorId}/orders/{orderId}",
    summary: "Read an order: its state, totals, split progress and refunds",
    handler: Handler::Tenant { roles: READERS, run: |ctx| Box::pin(get_order(ctx)) },
    response: Some(schema::<OrderResponse>()),
    ..BASE
};

async fn get_order(ctx: TenantCtx) -> HandlerResult {
    let order = service::get_order(&ctx.app, &ctx.scope, ctx.input.path("orderId")?).await?;
    Ok(ApiResponse::ok(&OrderResponse::from(order.value))?.with_etag(order.version))
}

pub const LIST_ORDER_UNITS: RouteDef = RouteDef {
    function: "order-units-list",
    path: "/vendors/{vendorId}/orders/{orderId}/units",
    summary: "List an order's fulfillment units in recipient order, with their gift state and thank-you notes",
    handler: Handler::Tenant { roles: READERS, run: |ctx| Box::pin(list_units(ctx)) },
    response: Some(schema::<UnitList>()),
    paginated: true,
    ..BASE
};

async fn list_units(ctx: TenantCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(&service::list_units(&ctx.app, &ctx.scope, ctx.input.path("orderId")?, limit, cursor).await?)
}

/// Stripe's webhook endpoint for one vendor: `https://<function URL>/webhooks/stripe/<vendor
/// id>`, registered in the vendor's own Stripe account. The signature is the authentication.
pub const STRIPE_WEBHOOK: RouteDef = RouteDef {
    function: "stripe-webhook",
    method: "POST",
    path: "/webhooks/stripe/{vendorId}",
    summary: "Stripe events of a vendor's account (function URL; Stripe-Signature checked)",
    handler: Handler::Public { run: |ctx| Box::pin(stripe_webhook(ctx)) },
    response: Some(schema::<WebhookOutcome>()),
    ..BASE
};

async fn stripe_webhook(ctx: PublicCtx) -> HandlerResult {
    // A function URL fills no path parameters: the vendor is the path's last segment.
    let vendor = ctx.input.raw_path().strip_prefix("/webhooks/stripe/").unwrap_or_default().trim_end_matches('/');
    let scope = crate::tenancy::guard::webhook_scope(vendor, "stripe")
        .map_err(|_| ApiError::NotFound("no such webhook endpoint".into()))?;
    tracing::Span::current().record("vendor_id", scope.vendor_id().as_str());
    let outcome =
        service::stripe_webhook(&ctx.app, &scope, ctx.input.body_bytes(), ctx.input.header("stripe-signature")).await?;
    tracing::info!(event_id = %outcome.event_id, outcome = %outcome.outcome, duplicate = outcome.duplicate, "stripe event");
    ApiResponse::ok(&outcome)
}

pub const CREATE_REFUND: RouteDef = RouteDef {
    function: "refunds-create",
    method: "POST",
    path: "/vendors/{vendorId}/orders/{orderId}/refunds",
    summary: "Refund units of an order, or the whole order, through Stripe; the units are cancelled when Stripe confirms",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(create_refund(ctx)) },
    request: Some(schema::<RefundRequest>()),
    response: Some(schema::<RefundsResponse>()),
    success: 201,
    idempotent: true,
    ..BASE
};

async fn create_refund(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<RefundRequest>()?;
    let refund = service::create_refund(&ctx.app, &ctx.scope, ctx.input.path("orderId")?, req).await?;
    ApiResponse::json(201, &refund)
}
