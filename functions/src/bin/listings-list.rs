//! `GET /vendors/{vendorId}/storefronts/{storefrontId}/products`: wiring only; the handler is `bestow::storefronts::routes::LIST_LISTINGS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::storefronts::routes::LIST_LISTINGS).await
}
