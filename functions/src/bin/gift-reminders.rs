//! SQS worker for `gift_reminders` jobs: wiring only; the handler is
//! `bestow::fulfillment::jobs::GiftRemindersHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::fulfillment::jobs::GiftRemindersHandler).await
}
