//! A loopback Lambda Runtime API: starts a function's real `bootstrap` binary the way Lambda
//! does, hands it one event, and returns its answer. Proves the binaries' wiring (not only
//! the handlers'), and is the base of the cold-start benchmark.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

use crate::InfraError;

const API: &str = "/2018-06-01/runtime";

/// What the function did with its one event.
#[derive(Debug)]
pub struct Invocation {
    /// The function's answer (`/response`), or its reported error (`/error`).
    pub outcome: Result<Value, Value>,
    /// Spawn to the first `GET /next`: the function's init.
    pub init: Duration,
    /// Spawn to the answer.
    pub total: Duration,
}

enum Report {
    Next(Instant),
    Done(Result<Value, Value>, Instant),
}

struct State {
    event: Mutex<Option<Value>>,
    reports: mpsc::UnboundedSender<Report>,
}

fn reply(status: u16, body: Bytes) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response
}

async fn runtime(state: Arc<State>, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let parsed = || serde_json::from_slice(&body).unwrap_or(Value::Null);
    if path == format!("{API}/invocation/next") {
        let _ = state.reports.send(Report::Next(Instant::now()));
        let Some(event) = state.event.lock().await.take() else {
            // One event per process: later polls wait until the process is killed.
            std::future::pending::<()>().await;
            return reply(500, Bytes::new());
        };
        let mut response = reply(200, Bytes::from(event.to_string()));
        let deadline = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 30_000;
        let headers = response.headers_mut();
        headers.insert("lambda-runtime-aws-request-id", http::HeaderValue::from_static("harness-request-1"));
        headers.insert("lambda-runtime-deadline-ms", http::HeaderValue::from(deadline));
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            http::HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:harness"),
        );
        headers.insert(
            "lambda-runtime-trace-id",
            http::HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
        );
        return response;
    }
    if path.ends_with("/response") {
        let _ = state.reports.send(Report::Done(Ok(parsed()), Instant::now()));
    } else if path.ends_with("/error") {
        let _ = state.reports.send(Report::Done(Err(parsed()), Instant::now()));
    }
    reply(202, Bytes::from_static(b"{\"status\":\"OK\"}"))
}

/// Runs `binary` with `env` (plus the variables Lambda sets) for one `event`.
pub async fn invoke_once(
    binary: &Path,
    env: &HashMap<String, String>,
    event: Value,
    timeout: Duration,
) -> Result<Invocation, InfraError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (reports, mut received) = mpsc::unbounded_channel();
    let state = Arc::new(State { event: Mutex::new(Some(event)), reports });
    let handler = move |req| runtime(Arc::clone(&state), req);
    let server = tokio::spawn(crate::loopback::serve(listener, Arc::new(handler)));
    let function = binary.file_name().and_then(|n| n.to_str()).unwrap_or("function").to_owned();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "harness")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let outcome = tokio::time::timeout(timeout, async {
        let mut init = None;
        while let Some(report) = received.recv().await {
            match report {
                Report::Next(at) => {
                    init.get_or_insert(at - started);
                }
                Report::Done(outcome, at) => {
                    return Some((outcome, init.unwrap_or_default(), at - started));
                }
            }
        }
        None
    })
    .await;
    let _ = child.kill().await;
    server.abort();
    match outcome {
        Ok(Some((outcome, init, total))) => Ok(Invocation { outcome, init, total }),
        Ok(None) => Err(InfraError::Other(format!("{function} exited without answering"))),
        Err(_) => Err(InfraError::Other(format!("{function} did not answer within {timeout:?}"))),
    }
}
