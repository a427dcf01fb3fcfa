//! `POST /vendors/{vendorId}/manifests`: wiring only; the handler is `bestow::fulfillment::routes::CREATE_MANIFEST`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::fulfillment::routes::CREATE_MANIFEST).await
}
