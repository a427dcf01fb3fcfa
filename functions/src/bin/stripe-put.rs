//! `PUT /vendors/{vendorId}/stripe`: wiring only; the handler is `bestow::vendors::routes::PUT_STRIPE`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::PUT_STRIPE).await
}
