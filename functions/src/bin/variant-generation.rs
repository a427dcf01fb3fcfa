//! SQS worker for `variant_generation` jobs: wiring only; the handler is
//! `bestow::catalog::jobs::VariantGenerationHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::catalog::jobs::VariantGenerationHandler).await
}
