//! `PUT /vendors/{vendorId}/payout-terms`: wiring only; the handler is `bestow::billing::routes::PUT_TERMS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::billing::routes::PUT_TERMS).await
}
