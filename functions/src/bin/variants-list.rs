//! `GET /vendors/{vendorId}/products/{productId}/variants`: wiring only; the handler is `bestow::catalog::routes::LIST_VARIANTS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::catalog::routes::LIST_VARIANTS).await
}
