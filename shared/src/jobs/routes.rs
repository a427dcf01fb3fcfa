//! `GET /vendors/{vendorId}/jobs/{jobId}`: the job resource a 202 points to.

use super::records::{JobRecord, JobRecords};
use crate::error::ApiError;
use crate::http::{ApiResponse, Handler, HandlerResult, RouteDef, TenantCtx, schema};
use crate::tenancy::Role;

pub const GET_JOB: RouteDef = RouteDef {
    function: "jobs-get",
    method: "GET",
    path: "/vendors/{vendorId}/jobs/{jobId}",
    summary: "A background job's status, progress counts and row errors",
    handler: Handler::Tenant {
        roles: &[Role::PlatformAdmin, Role::Owner, Role::Manager, Role::Fulfillment],
        run: |ctx| Box::pin(get_job(ctx)),
    },
    request: None,
    response: Some(schema::<JobRecord>()),
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

async fn get_job(ctx: TenantCtx) -> HandlerResult {
    let job_id = ctx.input.path("jobId")?;
    let record = JobRecords::new(&ctx.app.table, &ctx.scope)
        .get(job_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {job_id} not found")))?;
    ApiResponse::ok(&record.value)
}
