//! `GET /vendors/{vendorId}/orders/{orderId}/units`: wiring only; the handler is `bestow::orders::routes::LIST_ORDER_UNITS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::orders::routes::LIST_ORDER_UNITS).await
}
