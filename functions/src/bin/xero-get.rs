//! `GET /xero`: wiring only; the handler is `bestow::xero::routes::GET_CONNECTION`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::xero::routes::GET_CONNECTION).await
}
