//! `POST /vendors`: wiring only; the handler is `bestow::vendors::routes::CREATE_VENDOR`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::CREATE_VENDOR).await
}
