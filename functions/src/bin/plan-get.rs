//! `GET /vendors/{vendorId}/plan`: wiring only; the handler is `bestow::plans::routes::GET_PLAN`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::plans::routes::GET_PLAN).await
}
