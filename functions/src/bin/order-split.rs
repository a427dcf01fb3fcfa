//! SQS worker for `order_split` jobs: wiring only; the handler is
//! `bestow::orders::jobs::OrderSplitHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::orders::jobs::OrderSplitHandler).await
}
