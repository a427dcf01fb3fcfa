//! `GET /xero/callback`: wiring only; the handler is `bestow::xero::routes::CALLBACK`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::xero::routes::CALLBACK).await
}
