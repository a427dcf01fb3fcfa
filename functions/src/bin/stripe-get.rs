//! `GET /vendors/{vendorId}/stripe`: wiring only; the handler is `bestow::vendors::routes::GET_STRIPE`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::GET_STRIPE).await
}
