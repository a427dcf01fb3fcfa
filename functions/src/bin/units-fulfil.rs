//! `POST /vendors/{vendorId}/units/fulfil`: wiring only; the handler is `bestow::fulfillment::routes::FULFIL_UNITS`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::fulfillment::routes::FULFIL_UNITS).await
}
