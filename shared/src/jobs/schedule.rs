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
pub const ALL: &[&ScheduleDef] = &[&crate::fulfillment::jobs::GIFT_SWEEP];

pub fn by_function(function: &str) -> Option<&'static ScheduleDef> {
    ALL.iter().copied().find(|s| s.function == function)
}

/// Runs a scheduled function as a Lambda function.
pub async fn serve(schedule: &'static ScheduleDef) -> Result<(), crate::http::LambdaError> {
    crate::telemetry::init();
    let app = App::from_env().await?;
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
