//! `GET /vendors/{vendorId}/audit`: wiring only; the handler is `bestow::audit::routes::LIST_AUDIT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::audit::routes::LIST_AUDIT).await
}
