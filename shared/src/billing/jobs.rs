//! Billing jobs: closing a vendor's payout cycle, and the hourly schedule that queues it.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::App;
use crate::jobs::registry::WorkerDef;
use crate::jobs::worker::process_batch;
use crate::jobs::{Job, JobCtx, JobError, JobHandler};

/// Close one of the vendor's cycles: a named one (an operator's request), or, from the
/// schedule, the last one that has ended in the vendor's time zone at the run's hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CycleClose {
    pub cycle_id: Option<String>,
    /// `YYYY-MM-DDTHH` (UTC) of the schedule's run: a repeated run of the hour is one job.
    pub window: Option<String>,
}

impl Job for CycleClose {
    const TYPE: &'static str = "cycle_close";

    fn idempotency_key(&self) -> String {
        match (&self.cycle_id, &self.window) {
            (Some(cycle), _) => format!("cycle:{cycle}"),
            (None, window) => format!("window:{}", window.as_deref().unwrap_or_default()),
        }
    }
}

pub struct CycleCloseHandler;

impl JobHandler for CycleCloseHandler {
    type Job = CycleClose;

    async fn handle(&self, ctx: &JobCtx, job: CycleClose) -> Result<serde_json::Value, JobError> {
        let now = time::OffsetDateTime::now_utc();
        let cycle_id = match job.cycle_id {
            Some(cycle) => cycle,
            None => {
                let vendor = crate::vendors::repo::VendorRepo::new(&ctx.app.table, &ctx.scope)
                    .profile()
                    .await?
                    .ok_or_else(|| JobError::Permanent("the vendor is gone".into()))?
                    .value;
                let terms = super::service::terms(&ctx.app, &ctx.scope).await?;
                super::model::Cycle::last_closed(terms.cycle, &vendor.timezone, now - super::model::SETTLE)
                    .map_err(|e| JobError::Permanent(e.to_string()))?
                    .id
            }
        };
        let record = super::service::close_cycle(&ctx.app, &ctx.scope, &cycle_id, now).await?;
        Ok(json!({
            "cycle_id": record.cycle_id,
            "statement": record.json_key,
            "currencies": record.currencies.iter().map(|c| json!({
                "currency": c.currency, "net_payable_minor": c.net_payable_minor, "fees_minor": c.fees_minor,
            })).collect::<Vec<_>>(),
        }))
    }
}

pub const CYCLE_CLOSE: WorkerDef = WorkerDef {
    job_type: CycleClose::TYPE,
    function: "cycle-close",
    run: |app, event, deadline_ms| {
        Box::pin(async move { process_batch(&app, std::sync::Arc::new(CycleCloseHandler), event, deadline_ms).await })
    },
};

const PAYOUT_CYCLES_FUNCTION: &str = "payout-cycles";

/// The hourly schedule: one `cycle_close` job per active vendor. Cycles end at midnight in
/// each vendor's own time zone, so every hour some vendor's cycle may have just ended.
pub const PAYOUT_CYCLES: crate::jobs::schedule::ScheduleDef = crate::jobs::schedule::ScheduleDef {
    function: PAYOUT_CYCLES_FUNCTION,
    run: |app, now| Box::pin(enqueue_closes(app, now)),
};

pub async fn enqueue_closes(app: App, now_epoch_s: i64) -> Result<serde_json::Value, String> {
    // A suspended vendor's sales still need their statement: every vendor is closed.
    crate::jobs::schedule::enqueue_per_vendor(&app, PAYOUT_CYCLES_FUNCTION, now_epoch_s, |window, _| {
        Some(CycleClose { cycle_id: None, window: Some(window.to_owned()) })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_event_decodes_and_keys_name_the_cycle_or_the_hour() {
        let job: CycleClose =
            serde_json::from_value(crate::jobs::sample_payload(include_str!("../../../events/cycle-close.json")))
                .unwrap();
        assert_eq!(job.idempotency_key(), format!("cycle:{}", job.cycle_id.unwrap()));
        let scheduled = CycleClose { cycle_id: None, window: Some("2026-12-01T01".into()) };
        assert_eq!(scheduled.idempotency_key(), "window:2026-12-01T01");
    }
}
