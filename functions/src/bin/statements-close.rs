//! `POST /vendors/{vendorId}/statements`: wiring only; the handler is `bestow::billing::routes::CLOSE_CYCLE`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::billing::routes::CLOSE_CYCLE).await
}
