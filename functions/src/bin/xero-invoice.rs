//! SQS worker for `xero_invoice` jobs: wiring only; the handler is
//! `bestow::xero::jobs::XeroInvoiceHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::xero::jobs::XeroInvoiceHandler).await
}
