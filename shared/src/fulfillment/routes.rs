//! HTTP handlers of gifts (public: the code is the credential) and of the fulfillment queue.

use super::dto::*;
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, PublicCtx, RouteDef, TenantCtx, schema};
use crate::orders::dto::UnitList;
use crate::tenancy::Role;

const STAFF: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager, Role::Fulfillment];

const BASE: RouteDef = RouteDef {
    function: "",
    method: "GET",
    path: "",
    summary: "",
    handler: Handler::Public { run: |ctx| Box::pin(get_gift(ctx)) },
    request: None,
    response: Some(schema::<GiftView>()),
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

pub const GET_GIFT: RouteDef = RouteDef {
    function: "gifts-get",
    path: "/gifts/{code}",
    summary: "A gift as its recipient sees it (the first view marks it opened); unknown and expired codes are 404 alike",
    ..BASE
};

async fn get_gift(ctx: PublicCtx) -> HandlerResult {
    ApiResponse::ok(&service::open_gift(&ctx.app, ctx.input.path("code")?).await?)
}

pub const ACCEPT_GIFT: RouteDef = RouteDef {
    function: "gifts-accept",
    method: "PUT",
    path: "/gifts/{code}",
    summary: "The recipient chooses the variants (no dearer than paid for) and the address; repeatable until packed",
    handler: Handler::Public { run: |ctx| Box::pin(accept_gift(ctx)) },
    request: Some(schema::<AcceptGiftRequest>()),
    ..BASE
};

async fn accept_gift(ctx: PublicCtx) -> HandlerResult {
    let req = ctx.input.json::<AcceptGiftRequest>()?;
    ApiResponse::ok(&service::accept_gift(&ctx.app, ctx.input.path("code")?, req).await?)
}

pub const THANK_YOU: RouteDef = RouteDef {
    function: "gifts-thank-you",
    method: "POST",
    path: "/gifts/{code}/thank-you",
    summary: "The recipient's thank-you note, shown to the buyer on the order",
    handler: Handler::Public { run: |ctx| Box::pin(thank_you(ctx)) },
    request: Some(schema::<ThankYouRequest>()),
    ..BASE
};

async fn thank_you(ctx: PublicCtx) -> HandlerResult {
    let req = ctx.input.json::<ThankYouRequest>()?;
    ApiResponse::ok(&service::thank(&ctx.app, ctx.input.path("code")?, req).await?)
}

pub const LIST_UNITS: RouteDef = RouteDef {
    function: "units-list",
    path: "/vendors/{vendorId}/units",
    summary: "The fulfillment queue: units in one status (`status`, default ready), optionally of one order (`order_id`)",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(list_units(ctx)) },
    response: Some(schema::<UnitList>()),
    paginated: true,
    ..BASE
};

async fn list_units(ctx: TenantCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    let status = service::parse_status(ctx.input.query("status"))?;
    let order = ctx.input.query("order_id");
    ApiResponse::ok(&service::list_queue(&ctx.app, &ctx.scope, status, order, limit, cursor).await?)
}

pub const FULFIL_UNITS: RouteDef = RouteDef {
    function: "units-fulfil",
    method: "POST",
    path: "/vendors/{vendorId}/units/fulfil",
    summary: "Mark up to 99 units packed, shipped (carrier and tracking; the recipient is emailed) or delivered, all or none",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(fulfil(ctx)) },
    request: Some(schema::<FulfilRequest>()),
    response: Some(schema::<FulfilResponse>()),
    ..BASE
};

async fn fulfil(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<FulfilRequest>()?;
    ApiResponse::ok(&service::fulfil(&ctx.app, &ctx.scope, req).await?)
}

pub const CREATE_MANIFEST: RouteDef = RouteDef {
    function: "manifests-create",
    method: "POST",
    path: "/vendors/{vendorId}/manifests",
    summary: "Render a packing manifest (PDF) of up to 1,000 units as a job (202 with the job resource)",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(create_manifest(ctx)) },
    request: Some(schema::<ManifestRequest>()),
    response: Some(schema::<crate::jobs::records::JobRecord>()),
    success: 202,
    ..BASE
};

async fn create_manifest(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<ManifestRequest>()?;
    let record = service::start_manifest(&ctx.app, &ctx.scope, req).await?;
    let location = format!("/vendors/{}/manifests/{}", ctx.scope.vendor_id(), record.id);
    Ok(ApiResponse::json(202, &record)?.with_location(location))
}

pub const GET_MANIFEST: RouteDef = RouteDef {
    function: "manifests-get",
    path: "/vendors/{vendorId}/manifests/{manifestId}",
    summary: "A packing manifest's state and, once rendered, a presigned download URL (15 minutes)",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(get_manifest(ctx)) },
    response: Some(schema::<ManifestResponse>()),
    ..BASE
};

async fn get_manifest(ctx: TenantCtx) -> HandlerResult {
    ApiResponse::ok(&service::get_manifest(&ctx.app, &ctx.scope, ctx.input.path("manifestId")?).await?)
}
