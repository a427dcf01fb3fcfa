//! HTTP handlers of the audit log.

use super::dto::AuditList;
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, RouteDef, TenantCtx, schema};
use crate::tenancy::Role;

pub const LIST_AUDIT: RouteDef = RouteDef {
    function: "audit-list",
    method: "GET",
    path: "/vendors/{vendorId}/audit",
    summary: "The vendor's audit log, newest first",
    handler: Handler::Tenant {
        roles: &[Role::PlatformAdmin, Role::Owner, Role::Manager],
        run: |ctx| Box::pin(list_audit(ctx)),
    },
    request: None,
    response: Some(schema::<AuditList>()),
    success: 200,
    conditional: false,
    paginated: true,
    safe: false,
    idempotent: false,
};

async fn list_audit(ctx: TenantCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(&service::list(&ctx.app, &ctx.scope, limit, cursor).await?)
}
