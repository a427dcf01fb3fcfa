//! `PUT /vendors/{vendorId}/storefronts/{storefrontId}/products/{productId}`: wiring only; the handler is `bestow::storefronts::routes::PUT_LISTING`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::storefronts::routes::PUT_LISTING).await
}
