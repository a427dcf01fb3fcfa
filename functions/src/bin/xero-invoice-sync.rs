//! SQS worker for `xero_invoice_sync` jobs: wiring only; the handler is
//! `bestow::xero::jobs::XeroInvoiceSyncHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::xero::jobs::XeroInvoiceSyncHandler).await
}
