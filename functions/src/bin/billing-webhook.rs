//! `POST /webhooks/stripe-billing`: wiring only; the handler is `bestow::plans::routes::WEBHOOK`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::plans::routes::WEBHOOK).await
}
