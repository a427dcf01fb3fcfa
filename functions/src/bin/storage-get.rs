//! `GET /vendors/{vendorId}/storage`: wiring only; the handler is `bestow::vendors::routes::GET_STORAGE`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::GET_STORAGE).await
}
