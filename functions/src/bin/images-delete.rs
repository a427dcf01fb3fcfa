//! `DELETE /vendors/{vendorId}/products/{productId}/images/{imageId}`: wiring only; the handler is `bestow::catalog::routes::DELETE_IMAGE`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::catalog::routes::DELETE_IMAGE).await
}
