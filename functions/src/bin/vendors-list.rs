//! `GET /vendors`: wiring only; the handler is `bestow::vendors::routes::LIST_VENDORS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::LIST_VENDORS).await
}
