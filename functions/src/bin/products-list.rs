//! `GET /vendors/{vendorId}/products`: wiring only; the handler is `bestow::catalog::routes::LIST_PRODUCTS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::catalog::routes::LIST_PRODUCTS).await
}
