//! SQS worker for `cycle_close` jobs: wiring only; the handler is
//! `bestow::billing::jobs::CycleCloseHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::billing::jobs::CycleCloseHandler).await
}
