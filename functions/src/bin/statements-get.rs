//! `GET /vendors/{vendorId}/statements/{cycleId}`: wiring only; the handler is `bestow::billing::routes::GET_STATEMENT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::billing::routes::GET_STATEMENT).await
}
