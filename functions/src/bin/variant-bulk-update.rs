//! SQS worker for `variant_bulk_update` jobs: wiring only; the handler is
//! `bestow::bulk::jobs::VariantBulkUpdateHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::bulk::jobs::VariantBulkUpdateHandler).await
}
