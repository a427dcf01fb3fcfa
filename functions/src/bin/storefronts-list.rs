//! `GET /vendors/{vendorId}/storefronts`: wiring only; the handler is `bestow::storefronts::routes::LIST_STOREFRONTS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::storefronts::routes::LIST_STOREFRONTS).await
}
