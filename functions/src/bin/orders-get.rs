//! `GET /vendors/{vendorId}/orders/{orderId}`: wiring only; the handler is `bestow::orders::routes::GET_ORDER`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::orders::routes::GET_ORDER).await
}
