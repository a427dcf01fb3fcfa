//! SQS worker for `xero_payment` jobs: wiring only; the handler is
//! `bestow::xero::jobs::XeroPaymentHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::xero::jobs::XeroPaymentHandler).await
}
