//! `POST /vendors/{vendorId}/suspend`: wiring only; the handler is `bestow::vendors::routes::SUSPEND_VENDOR`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::SUSPEND_VENDOR).await
}
