//! `POST /vendors/{vendorId}/plan/checkout`: wiring only; the handler is `bestow::plans::routes::CHECKOUT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::plans::routes::CHECKOUT).await
}
