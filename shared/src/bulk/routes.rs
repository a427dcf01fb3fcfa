//! HTTP handlers of bulk operations: both answer 202 with the job resource.

use super::dto::{BulkUpdateRequest, ImportFormat};
use super::service;
use crate::error::ApiError;
use crate::http::{ApiResponse, Handler, HandlerResult, MAX_BODY_BYTES, RouteDef, TenantCtx, schema};
use crate::jobs::records::JobRecord;
use crate::tenancy::Role;

const MANAGERS: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager];

fn accepted(ctx: &TenantCtx, record: JobRecord) -> HandlerResult {
    let location = format!("/vendors/{}/jobs/{}", ctx.scope.vendor_id(), record.id);
    Ok(ApiResponse::json(202, &record)?.with_location(location))
}

pub const IMPORT_PRODUCTS: RouteDef = RouteDef {
    function: "imports-create",
    method: "POST",
    path: "/vendors/{vendorId}/imports",
    summary: "Import products and variants from a CSV file (text/csv, ≤ 64 KiB): 202 with the job",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(import_products(ctx)) },
    request: Some(schema::<ImportFormat>()),
    response: Some(schema::<JobRecord>()),
    success: 202,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: true,
};

async fn import_products(ctx: TenantCtx) -> HandlerResult {
    let content_type = ctx.input.header("content-type").unwrap_or_default().to_ascii_lowercase();
    if !content_type.starts_with("text/csv") {
        return Err(ApiError::UnsupportedMediaType("send the file as text/csv".into()));
    }
    let file = ctx.input.body_text();
    if file.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!("an import file is at most {} KiB", MAX_BODY_BYTES / 1024)));
    }
    let record = service::start_import(&ctx.app, &ctx.scope, file).await?;
    accepted(&ctx, record)
}

pub const BULK_UPDATE_VARIANTS: RouteDef = RouteDef {
    function: "bulk-updates-create",
    method: "POST",
    path: "/vendors/{vendorId}/variants/bulk",
    summary: "Change prices and stock of many variants, by filter or by list: 202 with the job",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(bulk_update(ctx)) },
    request: Some(schema::<BulkUpdateRequest>()),
    response: Some(schema::<JobRecord>()),
    success: 202,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: true,
};

async fn bulk_update(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<BulkUpdateRequest>()?;
    let record = service::start_bulk_update(&ctx.app, &ctx.scope, req).await?;
    accepted(&ctx, record)
}
