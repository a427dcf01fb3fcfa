//! `GET /vendors/{vendorId}/products/{productId}`: wiring only; the handler is `bestow::catalog::routes::GET_PRODUCT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::catalog::routes::GET_PRODUCT).await
}
