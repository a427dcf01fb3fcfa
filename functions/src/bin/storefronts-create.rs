//! `POST /vendors/{vendorId}/storefronts`: wiring only; the handler is `bestow::storefronts::routes::CREATE_STOREFRONT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::storefronts::routes::CREATE_STOREFRONT).await
}
