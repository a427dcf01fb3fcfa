//! `GET /storefronts/{storefront}/products`: wiring only; the handler is `bestow::storefronts::routes::PUBLIC_PRODUCTS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::storefronts::routes::PUBLIC_PRODUCTS).await
}
