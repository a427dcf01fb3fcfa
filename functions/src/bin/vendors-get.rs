//! `GET /vendors/{vendorId}`: wiring only; the handler is `bestow::vendors::routes::GET_VENDOR`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::GET_VENDOR).await
}
