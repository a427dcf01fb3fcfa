//! `POST /vendors/{vendorId}/shopify/install`: wiring only; the handler is `bestow::shopify::routes::INSTALL`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::shopify::routes::INSTALL).await
}
