//! `POST /vendors/{vendorId}/products/{productId}/images`: wiring only; the handler is `bestow::catalog::routes::CREATE_IMAGE`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::catalog::routes::CREATE_IMAGE).await
}
