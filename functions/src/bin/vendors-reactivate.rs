//! `POST /vendors/{vendorId}/reactivate`: wiring only; the handler is `bestow::vendors::routes::REACTIVATE_VENDOR`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::REACTIVATE_VENDOR).await
}
