//! `PUT /vendors/{vendorId}/storage`: wiring only; the handler is `bestow::vendors::routes::PUT_STORAGE`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::PUT_STORAGE).await
}
