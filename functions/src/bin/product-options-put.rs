//! `PUT /vendors/{vendorId}/products/{productId}/options`: wiring only; the handler is `bestow::catalog::routes::PUT_OPTIONS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::catalog::routes::PUT_OPTIONS).await
}
