//! `GET /storefronts/{storefront}/products/{productId}`: wiring only; the handler is `bestow::storefronts::routes::PUBLIC_PRODUCT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::storefronts::routes::PUBLIC_PRODUCT).await
}
