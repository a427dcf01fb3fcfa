//! `POST /vendors/{vendorId}/storefronts/{storefrontId}/orders`: wiring only; the handler is `bestow::orders::routes::CREATE_ORDER`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::orders::routes::CREATE_ORDER).await
}
