//! `GET /vendors/{vendorId}/shopify`: wiring only; the handler is `bestow::shopify::routes::GET_CONNECTION`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::shopify::routes::GET_CONNECTION).await
}
