//! The variant generation job: applies a product's option set to its variants when more
//! variants change than one transaction holds.

use serde::{Deserialize, Serialize};

use super::service::{abandon_generation, run_generation};
use crate::jobs::registry::WorkerDef;
use crate::jobs::worker::process_batch;
use crate::jobs::{Job, JobCtx, JobError, JobHandler};

/// `maxReceiveCount` of the job's queue in `template.yaml`: the last delivery gives up
/// cleanly (releases the product) instead of leaving it locked for a message in the DLQ.
pub const GENERATION_MAX_RECEIVES: u32 = 5;
/// Kept back from the runtime's budget to release the product on the last try.
const CLEANUP_MARGIN_MS: i64 = 3_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantGeneration {
    /// The job resource's id, which the product's lock names.
    pub job_id: String,
    pub product_id: String,
    pub options_revision: u64,
    /// Who changed the options, for the audit entry the job writes.
    pub requested_by: String,
    pub requested_by_role: String,
}

impl Job for VariantGeneration {
    const TYPE: &'static str = "variant_generation";

    fn idempotency_key(&self) -> String {
        self.job_id.clone()
    }
}

pub struct VariantGenerationHandler;

impl JobHandler for VariantGenerationHandler {
    type Job = VariantGeneration;

    async fn handle(&self, ctx: &JobCtx, job: VariantGeneration) -> Result<serde_json::Value, JobError> {
        // Stop the work a little before the runtime's budget ends, so the last try still has
        // the time to release the product.
        let work_ms = (ctx.budget_ends_ms - crate::jobs::idempotency::now_ms() - CLEANUP_MARGIN_MS).max(0);
        let work = tokio::time::timeout(
            std::time::Duration::from_millis(work_ms as u64),
            run_generation(&ctx.app, &ctx.scope, &job),
        );
        let outcome = match work.await {
            Ok(outcome) => outcome,
            Err(_) => Err(JobError::Retryable(format!("did not finish within {work_ms} ms"))),
        };
        match outcome {
            Ok(result) => Ok(result),
            Err(err) => {
                let last_try = matches!(err, JobError::Permanent(_)) || ctx.receive_count >= GENERATION_MAX_RECEIVES;
                if !last_try {
                    return Err(err);
                }
                let why = err.to_string();
                if let Err(release) = abandon_generation(&ctx.app, &ctx.scope, &job, &why).await {
                    tracing::error!(error = %release, "could not release the product after the last try");
                }
                Err(JobError::Permanent(why))
            }
        }
    }
}

pub const VARIANT_GENERATION: WorkerDef = WorkerDef {
    job_type: VariantGeneration::TYPE,
    function: "variant-generation",
    run: |app, event, deadline_ms| {
        Box::pin(
            async move { process_batch(&app, std::sync::Arc::new(VariantGenerationHandler), event, deadline_ms).await },
        )
    },
};
