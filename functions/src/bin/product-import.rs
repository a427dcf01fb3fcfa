//! SQS worker for `product_import` jobs: wiring only; the handler is
//! `bestow::bulk::jobs::ProductImportHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::bulk::jobs::ProductImportHandler).await
}
