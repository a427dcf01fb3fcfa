//! `POST /vendors/{vendorId}/orders/{orderId}/refunds`: wiring only; the handler is `bestow::orders::routes::CREATE_REFUND`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::orders::routes::CREATE_REFUND).await
}
