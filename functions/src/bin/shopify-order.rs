//! SQS worker for `shopify_order` jobs: wiring only; the handler is
//! `bestow::shopify::jobs::ShopifyOrderHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::shopify::jobs::ShopifyOrderHandler).await
}
