//! Scheduled functions: EventBridge Scheduler invokes each directly (its event carries nothing
//! Bestow needs but the time); a scheduled function only fans work out as per-vendor jobs, so
//! the work itself keeps the queues' retries, idempotency and dead-lettering.

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};

use crate::app::App;
use crate::http::BoxFuture;

pub struct ScheduleDef {
    /// The Lambda function (binary).
    pub function: &'static str,
    /// Runs once for the time given (epoch seconds); answers a summary for the log.
    pub run: fn(App, i64) -> BoxFuture<Result<serde_json::Value, String>>,
}

/// Every scheduled function: the local stack runs them on a timer, a test holds the list
/// equal to `template.yaml`.
pub const ALL: &[&ScheduleDef] = &[&crate::fulfillment::jobs::GIFT_SWEEP, &crate::billing::jobs::PAYOUT_CYCLES];

pub fn by_function(function: &str) -> Option<&'static ScheduleDef> {
    ALL.iter().copied().find(|s| s.function == function)
}

/// Runs a scheduled function as a Lambda function.
pub async fn serve(schedule: &'static ScheduleDef) -> Result<(), crate::http::LambdaError> {
    crate::telemetry::init();
    let app = App::from_env()?;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let summary = (schedule.run)(app, now).await?;
            tracing::info!(function = schedule.function, %summary, "schedule done");
            Ok::<_, crate::http::LambdaError>(summary)
        }
    }))
    .await
}

/// A scheduled run's fan-out: one job per vendor in the platform directory, made by `make` from
/// the run's hour (`YYYY-MM-DDTHH`, UTC: a repeated run of the hour makes the same jobs, which
/// their idempotency keys then run once) and the vendor; `None` skips the vendor.
pub async fn enqueue_per_vendor<J: crate::jobs::Job>(
    app: &App,
    function: &str,
    now_epoch_s: i64,
    make: impl Fn(&str, &crate::vendors::model::VendorSummary) -> Option<J>,
) -> Result<serde_json::Value, String> {
    use crate::vendors::repo::VendorDirectory;
    let platform = crate::tenancy::guard::schedule_scope(function);
    let window = time::OffsetDateTime::from_unix_timestamp(now_epoch_s)
        .map_err(|e| e.to_string())?
        .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]"))
        .map_err(|e| e.to_string())?;
    let directory = VendorDirectory::new(&app.table, &platform);
    let (mut queued, mut cursor) = (0u32, None);
    loop {
        let (vendors, next) = directory.list(100, cursor.as_ref()).await.map_err(|e| e.to_string())?;
        for vendor in vendors {
            let Some(job) = make(&window, &vendor) else { continue };
            let Ok(id) = crate::tenancy::VendorId::parse(&vendor.id) else { continue };
            app.jobs.enqueue(&platform.tenant(id), &job).await.map_err(|e| e.to_string())?;
            queued += 1;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(serde_json::json!({ "window": window, "vendors": queued }))
}
