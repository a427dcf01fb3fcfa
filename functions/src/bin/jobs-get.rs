//! `GET /vendors/{vendorId}/jobs/{jobId}`: wiring only; the handler is `bestow::jobs::routes::GET_JOB`.

#[tokio::main]
async fn main() -> Result<(), bestow::http::LambdaError> {
    bestow::http::serve(&bestow::jobs::routes::GET_JOB).await
}
