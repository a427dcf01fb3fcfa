//! `POST /xero/connect`: wiring only; the handler is `bestow::xero::routes::CONNECT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::xero::routes::CONNECT).await
}
