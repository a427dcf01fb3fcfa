//! SQS worker for `shopify_sync` jobs: wiring only; the handler is
//! `bestow::shopify::jobs::ShopifySyncHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::shopify::jobs::ShopifySyncHandler).await
}
