//! HTTP handlers of the notifications domain.

use super::dto::{JobAccepted, SmtpTestRequest};
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, RouteDef, TenantCtx, schema};
use crate::tenancy::Role;

pub const SMTP_TEST: RouteDef = RouteDef {
    function: "smtp-test",
    method: "POST",
    path: "/vendors/{vendorId}/smtp/test",
    summary: "Queue a test email through the vendor's SMTP settings (202 with the job id)",
    handler: Handler::Tenant {
        roles: &[Role::PlatformAdmin, Role::Owner, Role::Manager],
        run: |ctx| Box::pin(smtp_test(ctx)),
    },
    request: Some(schema::<SmtpTestRequest>()),
    response: Some(schema::<JobAccepted>()),
    success: 202,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: true,
};

async fn smtp_test(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<SmtpTestRequest>()?;
    ApiResponse::json(202, &service::send_smtp_test(&ctx.app, &ctx.scope, req).await?)
}
