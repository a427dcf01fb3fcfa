//! `POST /vendors/{vendorId}/shipping/quote`: wiring only; the handler is `bestow::vendors::routes::QUOTE_SHIPPING`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::QUOTE_SHIPPING).await
}
