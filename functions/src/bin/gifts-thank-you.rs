//! `POST /gifts/{code}/thank-you`: wiring only; the handler is `bestow::fulfillment::routes::THANK_YOU`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::fulfillment::routes::THANK_YOU).await
}
