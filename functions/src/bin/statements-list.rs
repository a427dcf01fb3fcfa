//! `GET /vendors/{vendorId}/statements`: wiring only; the handler is `bestow::billing::routes::LIST_STATEMENTS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::billing::routes::LIST_STATEMENTS).await
}
