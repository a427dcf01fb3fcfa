//! SQS worker for `gift_delivery` jobs: wiring only; the handler is
//! `bestow::fulfillment::jobs::GiftDeliveryHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::fulfillment::jobs::GiftDeliveryHandler).await
}
