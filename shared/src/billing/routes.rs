//! HTTP handlers of billing: payout terms, statements (the vendor's and the platform's view),
//! closing a cycle and recording its payout.

use super::dto::*;
use super::model::PayoutTerms;
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, PlatformCtx, RouteDef, TenantCtx, schema};
use crate::tenancy::Role;

/// Money figures are for those who run the business.
const MANAGERS: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager];
/// Terms, closing and payouts are the platform's side of the relationship.
const PLATFORM_ADMINS: &[Role] = &[Role::PlatformAdmin];

const BASE: RouteDef = RouteDef {
    function: "",
    method: "GET",
    path: "",
    summary: "",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(get_terms(ctx)) },
    request: None,
    response: None,
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

pub const GET_TERMS: RouteDef = RouteDef {
    function: "payout-terms-get",
    path: "/vendors/{vendorId}/payout-terms",
    summary: "The vendor's payout cycle and platform fees",
    response: Some(schema::<PayoutTerms>()),
    ..BASE
};

async fn get_terms(ctx: TenantCtx) -> HandlerResult {
    ApiResponse::ok(&service::terms(&ctx.app, &ctx.scope).await?)
}

pub const PUT_TERMS: RouteDef = RouteDef {
    function: "payout-terms-put",
    method: "PUT",
    path: "/vendors/{vendorId}/payout-terms",
    summary: "Set the vendor's payout cycle (weekly or monthly, in its time zone) and platform fees (platform admin)",
    handler: Handler::Tenant { roles: PLATFORM_ADMINS, run: |ctx| Box::pin(put_terms(ctx)) },
    request: Some(schema::<PayoutTerms>()),
    response: Some(schema::<PayoutTerms>()),
    ..BASE
};

async fn put_terms(ctx: TenantCtx) -> HandlerResult {
    let terms = ctx.input.json::<PayoutTerms>()?;
    ApiResponse::ok(&service::put_terms(&ctx.app, &ctx.scope, terms).await?)
}

pub const LIST_STATEMENTS: RouteDef = RouteDef {
    function: "statements-list",
    path: "/vendors/{vendorId}/statements",
    summary: "The vendor's closed cycles, latest first, with their figures and Xero invoice state",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(list_statements(ctx)) },
    response: Some(schema::<StatementList>()),
    paginated: true,
    ..BASE
};

async fn list_statements(ctx: TenantCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(&service::list_statements(&ctx.app, &ctx.scope, limit, cursor).await?)
}

pub const GET_STATEMENT: RouteDef = RouteDef {
    function: "statements-get",
    path: "/vendors/{vendorId}/statements/{cycleId}",
    summary: "One closed cycle's statement, with download links to its JSON and PDF (15 minutes)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(get_statement(ctx)) },
    response: Some(schema::<StatementView>()),
    ..BASE
};

async fn get_statement(ctx: TenantCtx) -> HandlerResult {
    let cycle = ctx.input.path("cycleId")?;
    ApiResponse::ok(&service::get_statement(&ctx.app, &ctx.scope, cycle).await?)
}

pub const CLOSE_CYCLE: RouteDef = RouteDef {
    function: "statements-close",
    method: "POST",
    path: "/vendors/{vendorId}/statements",
    summary: "Close an ended cycle now (platform admin; the hourly schedule closes cycles on its own). Closing it again answers the same statement",
    handler: Handler::Tenant { roles: PLATFORM_ADMINS, run: |ctx| Box::pin(close_cycle(ctx)) },
    request: Some(schema::<CloseCycleRequest>()),
    response: Some(schema::<StatementView>()),
    success: 201,
    ..BASE
};

async fn close_cycle(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<CloseCycleRequest>()?;
    let now = time::OffsetDateTime::now_utc();
    let record = service::close_cycle(&ctx.app, &ctx.scope, &req.cycle_id, now).await?;
    ApiResponse::json(201, &service::statement_view(&ctx.app, record).await?)
}

pub const RECORD_PAYOUT: RouteDef = RouteDef {
    function: "payouts-create",
    method: "POST",
    path: "/vendors/{vendorId}/statements/{cycleId}/payouts",
    summary: "Record that the vendor was paid a cycle's net payable in one currency; the fee invoice is then paid in Xero (platform admin). The same payout again answers 200",
    handler: Handler::Tenant { roles: PLATFORM_ADMINS, run: |ctx| Box::pin(record_payout(ctx)) },
    request: Some(schema::<PayoutRequest>()),
    response: Some(schema::<StatementView>()),
    success: 201,
    ..BASE
};

async fn record_payout(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<PayoutRequest>()?;
    let cycle = ctx.input.path("cycleId")?;
    let (view, recorded) = service::record_payout(&ctx.app, &ctx.scope, cycle, req).await?;
    ApiResponse::json(if recorded { 201 } else { 200 }, &view)
}

pub const ALL_STATEMENTS: RouteDef = RouteDef {
    function: "statements-all",
    path: "/statements",
    summary: "Every vendor's closed cycles and their invoice state in Xero, latest period first (platform admin)",
    handler: Handler::Platform { run: |ctx| Box::pin(all_statements(ctx)) },
    response: Some(schema::<StatementList>()),
    paginated: true,
    ..BASE
};

async fn all_statements(ctx: PlatformCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(&service::list_all_statements(&ctx.app, &ctx.scope, limit, cursor).await?)
}
