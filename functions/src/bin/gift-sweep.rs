//! The hourly schedule of gift reminders and expiry (EventBridge Scheduler): wiring only; the
//! work is `bestow::fulfillment::jobs::GIFT_SWEEP`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::schedule::serve(&bestow::fulfillment::jobs::GIFT_SWEEP).await
}
