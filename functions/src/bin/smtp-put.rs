//! `PUT /vendors/{vendorId}/smtp`: wiring only; the handler is `bestow::vendors::routes::PUT_SMTP`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::vendors::routes::PUT_SMTP).await
}
