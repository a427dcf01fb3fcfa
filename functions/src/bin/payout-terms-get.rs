//! `GET /vendors/{vendorId}/payout-terms`: wiring only; the handler is `bestow::billing::routes::GET_TERMS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::billing::routes::GET_TERMS).await
}
