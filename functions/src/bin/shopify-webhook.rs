//! Shopify webhooks on a function URL (`POST /webhooks/shopify`): wiring only; the handler is
//! `bestow::shopify::routes::WEBHOOK`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::shopify::routes::WEBHOOK).await
}
