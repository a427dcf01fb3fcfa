//! `GET /vendors/{vendorId}/orders`: wiring only; the handler is `bestow::orders::routes::LIST_ORDERS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::orders::routes::LIST_ORDERS).await
}
