//! `POST /webhooks/xero`: wiring only; the handler is `bestow::xero::routes::WEBHOOK`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::xero::routes::WEBHOOK).await
}
