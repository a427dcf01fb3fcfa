//! `PATCH /vendors/{vendorId}/storefronts/{storefrontId}`: wiring only; the handler is `bestow::storefronts::routes::UPDATE_STOREFRONT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::storefronts::routes::UPDATE_STOREFRONT).await
}
