//! `GET /plans`: wiring only; the handler is `bestow::plans::routes::LIST_PLANS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::plans::routes::LIST_PLANS).await
}
