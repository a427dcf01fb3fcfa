//! `GET /gifts/{code}`: wiring only; the handler is `bestow::fulfillment::routes::GET_GIFT`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::fulfillment::routes::GET_GIFT).await
}
