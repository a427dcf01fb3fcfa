//! `PUT /gifts/{code}`: wiring only; the handler is `bestow::fulfillment::routes::ACCEPT_GIFT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::fulfillment::routes::ACCEPT_GIFT).await
}
