//! `POST /vendors/{vendorId}/shopify/sync`: wiring only; the handler is `bestow::shopify::routes::SYNC`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::shopify::routes::SYNC).await
}
