//! `POST /vendors/{vendorId}/variants/bulk`: wiring only; the handler is `bestow::bulk::routes::BULK_UPDATE_VARIANTS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::bulk::routes::BULK_UPDATE_VARIANTS).await
}
