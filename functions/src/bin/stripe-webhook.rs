//! Stripe webhooks on a function URL (`POST /webhooks/stripe/{vendorId}`): wiring only; the
//! handler is `bestow::orders::routes::STRIPE_WEBHOOK`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::orders::routes::STRIPE_WEBHOOK).await
}
