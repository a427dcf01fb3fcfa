//! `GET /vendors/{vendorId}/units`: wiring only; the handler is `bestow::fulfillment::routes::LIST_UNITS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::fulfillment::routes::LIST_UNITS).await
}
