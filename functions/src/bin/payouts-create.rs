//! `POST /vendors/{vendorId}/statements/{cycleId}/payouts`: wiring only; the handler is `bestow::billing::routes::RECORD_PAYOUT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::billing::routes::RECORD_PAYOUT).await
}
