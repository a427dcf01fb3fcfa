//! `GET /vendors/{vendorId}/manifests/{manifestId}`: wiring only; the handler is `bestow::fulfillment::routes::GET_MANIFEST`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::fulfillment::routes::GET_MANIFEST).await
}
