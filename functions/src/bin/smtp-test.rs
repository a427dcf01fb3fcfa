//! `POST /vendors/{vendorId}/smtp/test`: wiring only; the handler is `bestow::notifications::routes::SMTP_TEST`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::notifications::routes::SMTP_TEST).await
}
