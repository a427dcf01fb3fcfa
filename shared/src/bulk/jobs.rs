//! The import and bulk update jobs.

use serde::{Deserialize, Serialize};

use super::service::{run_bulk_update, run_import};
use crate::jobs::records::{JobRecord, JobRecords, JobStatus};
use crate::jobs::registry::WorkerDef;
use crate::jobs::worker::process_batch;
use crate::jobs::{Job, JobCtx, JobError, JobHandler};

/// `maxReceiveCount` of both jobs' queues in `template.yaml`: the last try records the
/// failure on the job resource instead of leaving it "running".
pub const BULK_MAX_RECEIVES: u32 = 5;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductImport {
    /// The job resource; its input item holds the file.
    pub job_id: String,
    pub requested_by: String,
    pub requested_by_role: String,
}

impl Job for ProductImport {
    const TYPE: &'static str = "product_import";

    fn idempotency_key(&self) -> String {
        self.job_id.clone()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantBulkUpdate {
    /// The job resource; its input item holds the request.
    pub job_id: String,
    pub requested_by: String,
    pub requested_by_role: String,
}

impl Job for VariantBulkUpdate {
    const TYPE: &'static str = "variant_bulk_update";

    fn idempotency_key(&self) -> String {
        self.job_id.clone()
    }
}

/// On the last try (or a permanent error) the job resource says it failed and why.
async fn give_up(ctx: &JobCtx, job_id: &str, job_type: &str, err: JobError) -> JobError {
    let last_try = matches!(err, JobError::Permanent(_)) || ctx.receive_count >= BULK_MAX_RECEIVES;
    if !last_try {
        return err;
    }
    let mut record = JobRecord::queued(&ctx.scope, job_id.to_owned(), job_type, None);
    record.status = JobStatus::Failed;
    record.failure = Some(err.to_string());
    if let Err(store) = JobRecords::new(&ctx.app.table, &ctx.scope).finish(&record).await {
        tracing::error!(error = %store, "could not record the job's failure");
    }
    JobError::Permanent(err.to_string())
}

pub struct ProductImportHandler;

impl JobHandler for ProductImportHandler {
    type Job = ProductImport;

    async fn handle(&self, ctx: &JobCtx, job: ProductImport) -> Result<serde_json::Value, JobError> {
        match run_import(&ctx.app, &ctx.scope, &job).await {
            Ok(result) => Ok(result),
            Err(err) => Err(give_up(ctx, &job.job_id, ProductImport::TYPE, err).await),
        }
    }
}

pub struct VariantBulkUpdateHandler;

impl JobHandler for VariantBulkUpdateHandler {
    type Job = VariantBulkUpdate;

    async fn handle(&self, ctx: &JobCtx, job: VariantBulkUpdate) -> Result<serde_json::Value, JobError> {
        match run_bulk_update(&ctx.app, &ctx.scope, &job).await {
            Ok(result) => Ok(result),
            Err(err) => Err(give_up(ctx, &job.job_id, VariantBulkUpdate::TYPE, err).await),
        }
    }
}

pub const PRODUCT_IMPORT: WorkerDef = WorkerDef {
    job_type: ProductImport::TYPE,
    function: "product-import",
    run: |app, event, deadline_ms| {
        Box::pin(
            async move { process_batch(&app, std::sync::Arc::new(ProductImportHandler), event, deadline_ms).await },
        )
    },
};

pub const VARIANT_BULK_UPDATE: WorkerDef = WorkerDef {
    job_type: VariantBulkUpdate::TYPE,
    function: "variant-bulk-update",
    run: |app, event, deadline_ms| {
        Box::pin(
            async move { process_batch(&app, std::sync::Arc::new(VariantBulkUpdateHandler), event, deadline_ms).await },
        )
    },
};
