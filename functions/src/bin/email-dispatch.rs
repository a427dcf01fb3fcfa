//! SQS worker for `email_dispatch` jobs: wiring only; the handler is
//! `bestow::notifications::jobs::EmailDispatchHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::notifications::jobs::EmailDispatchHandler).await
}
