//! `POST /vendors/{vendorId}/products/{productId}/images/{imageId}/confirm`: wiring only; the handler is `bestow::catalog::routes::CONFIRM_IMAGE`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::catalog::routes::CONFIRM_IMAGE).await
}
