//! `POST /vendors/{vendorId}/products`: wiring only; the handler is `bestow::catalog::routes::CREATE_PRODUCT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::catalog::routes::CREATE_PRODUCT).await
}
