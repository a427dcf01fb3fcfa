//! SQS worker for `refund_request` jobs: wiring only; the handler is
//! `bestow::orders::jobs::RefundRequestHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::orders::jobs::RefundRequestHandler).await
}
