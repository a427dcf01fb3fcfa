//! `GET /shopify/callback`: wiring only; the handler is `bestow::shopify::routes::CALLBACK`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::shopify::routes::CALLBACK).await
}
