//! The hourly schedule that closes payout cycles (EventBridge Scheduler): wiring only; the
//! work is `bestow::billing::jobs::PAYOUT_CYCLES`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::schedule::serve(&bestow::billing::jobs::PAYOUT_CYCLES).await
}
