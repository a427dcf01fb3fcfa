//! SQS worker for `packing_manifest` jobs: wiring only; the handler is
//! `bestow::fulfillment::jobs::PackingManifestHandler`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::jobs::worker::serve(bestow::fulfillment::jobs::PackingManifestHandler).await
}
