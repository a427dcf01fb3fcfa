//! SQS worker for `shopify_event` jobs: wiring only; the handler is
//! `bestow::shopify::jobs::ShopifyWebhookHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::shopify::jobs::ShopifyWebhookHandler).await
}
