//! `GET /vendors/{vendorId}/shipping`: wiring only; the handler is `bestow::vendors::routes::GET_SHIPPING`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::GET_SHIPPING).await
}
