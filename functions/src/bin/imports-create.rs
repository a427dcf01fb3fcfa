//! `POST /vendors/{vendorId}/imports`: wiring only; the handler is `bestow::bulk::routes::IMPORT_PRODUCTS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::bulk::routes::IMPORT_PRODUCTS).await
}
