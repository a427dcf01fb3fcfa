//! `PATCH /vendors/{vendorId}/products/{productId}/variants/{variantId}`: wiring only; the handler is `bestow::catalog::routes::UPDATE_VARIANT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::catalog::routes::UPDATE_VARIANT).await
}
