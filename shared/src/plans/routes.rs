//! HTTP handlers of plans: the offer, a vendor's plan and usage, starting a subscription, and
//! the platform Stripe account's webhook (a function URL).

use super::dto::*;
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, PublicCtx, RouteDef, TenantCtx, schema};
use crate::tenancy::Role;

const MANAGERS: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager];
/// Paying the platform is the owner's call.
const OWNERS: &[Role] = &[Role::PlatformAdmin, Role::Owner];

const BASE: RouteDef = RouteDef {
    function: "",
    method: "GET",
    path: "",
    summary: "",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(vendor_plan(ctx)) },
    request: None,
    response: None,
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

pub const LIST_PLANS: RouteDef = RouteDef {
    function: "plans-list",
    path: "/plans",
    summary: "The plans vendors can subscribe to, with their limits",
    handler: Handler::Public { run: |ctx| Box::pin(list_plans(ctx)) },
    response: Some(schema::<PlanList>()),
    ..BASE
};

async fn list_plans(ctx: PublicCtx) -> HandlerResult {
    ApiResponse::ok(&service::list_plans(&ctx.app))
}

pub const GET_PLAN: RouteDef = RouteDef {
    function: "plan-get",
    path: "/vendors/{vendorId}/plan",
    summary: "The vendor's plan: subscription state, what it allows now, and the usage counted against it",
    response: Some(schema::<VendorPlanView>()),
    ..BASE
};

async fn vendor_plan(ctx: TenantCtx) -> HandlerResult {
    ApiResponse::ok(&service::vendor_plan(&ctx.app, &ctx.scope).await?)
}

pub const CHECKOUT: RouteDef = RouteDef {
    function: "plan-checkout",
    method: "POST",
    path: "/vendors/{vendorId}/plan/checkout",
    summary: "Subscribe to a plan: a Stripe Checkout Session (subscription mode) on the platform's account",
    handler: Handler::Tenant { roles: OWNERS, run: |ctx| Box::pin(checkout(ctx)) },
    request: Some(schema::<PlanCheckoutRequest>()),
    response: Some(schema::<PlanCheckoutStarted>()),
    success: 201,
    ..BASE
};

async fn checkout(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<PlanCheckoutRequest>()?;
    ApiResponse::json(201, &service::start_checkout(&ctx.app, &ctx.scope, req).await?)
}

pub const WEBHOOK: RouteDef = RouteDef {
    function: "billing-webhook",
    method: "POST",
    path: "/webhooks/stripe-billing",
    summary: "Stripe Billing webhooks of the platform's own account (function URL; Stripe-Signature checked)",
    handler: Handler::Public { run: |ctx| Box::pin(webhook(ctx)) },
    response: Some(schema::<BillingWebhookOutcome>()),
    ..BASE
};

async fn webhook(ctx: PublicCtx) -> HandlerResult {
    let outcome =
        service::receive_webhook(&ctx.app, ctx.input.body_bytes(), ctx.input.header("stripe-signature")).await?;
    tracing::info!(event_id = %outcome.event_id, outcome = %outcome.outcome, duplicate = outcome.duplicate, "billing webhook");
    ApiResponse::ok(&outcome)
}
