//! `GET /statements`: wiring only; the handler is `bestow::billing::routes::ALL_STATEMENTS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::billing::routes::ALL_STATEMENTS).await
}
