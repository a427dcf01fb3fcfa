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
    /// The event handed over (`/next` answered) to the answer: the first invocation.
    pub first_invocation: Duration,
    /// Spawn to the answer.
    pub total: Duration,
    /// CPU time of all the process's threads (user + system) up to the answer.
    pub cpu: Duration,
    /// The process's peak resident set (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
}

/// CPU time and peak RSS of a live process, from `/proc` (Linux): the sum of its threads'
/// on-CPU nanoseconds (`schedstat`, finer than `stat`'s 10 ms ticks) and `VmHWM`.
fn process_usage(pid: u32) -> (Duration, u64) {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    let cpu_ns: u64 = threads
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (Duration::from_nanos(cpu_ns), peak_kib)
}

enum Report {
    Next(Instant),
    Done(Result<Value, Value>, Instant),
}

struct State {
    /// The events still to hand out, in order.
    events: Mutex<std::collections::VecDeque<Value>>,
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
        let Some(event) = state.events.lock().await.pop_front() else {
            // No more events: later polls wait until the process is stopped.
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

/// The variables Lambda sets for a function at 128 MB, the Runtime API at `address`.
fn as_lambda<'a>(
    command: &'a mut tokio::process::Command,
    address: std::net::SocketAddr,
    function: &str,
) -> &'a mut tokio::process::Command {
    command
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "harness")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
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
    let state = Arc::new(State { events: Mutex::new([event].into()), reports });
    let handler = move |req| runtime(Arc::clone(&state), req);
    let server = tokio::spawn(crate::loopback::serve(listener, Arc::new(handler)));
    let function = binary.file_name().and_then(|n| n.to_str()).unwrap_or("function").to_owned();
    let started = Instant::now();
    let mut command = tokio::process::Command::new(binary);
    let mut child = as_lambda(command.envs(env), address, &function).spawn()?;
    let outcome = tokio::time::timeout(timeout, async {
        let mut init = None;
        while let Some(report) = received.recv().await {
            match report {
                Report::Next(at) => {
                    init.get_or_insert(at);
                }
                Report::Done(outcome, at) => {
                    // Read before the kill, while the process waits for its next event.
                    let usage = child.id().map(process_usage).unwrap_or_default();
                    return Some((outcome, init.unwrap_or(started), at, usage));
                }
            }
        }
        None
    })
    .await;
    let _ = child.kill().await;
    server.abort();
    match outcome {
        Ok(Some((outcome, next, done, (cpu, peak_rss_kib)))) => Ok(Invocation {
            outcome,
            init: next - started,
            first_invocation: done - next,
            total: done - started,
            cpu,
            peak_rss_kib,
        }),
        Ok(None) => Err(InfraError::Other(format!("{function} exited without answering"))),
        Err(_) => Err(InfraError::Other(format!("{function} did not answer within {timeout:?}"))),
    }
}

/// Runs `command` (a bootstrap, or a tool wrapping one such as valgrind) as the function
/// `function`, hands it `events` one after another, then stops it with SIGTERM (so a
/// wrapping tool writes its report) and waits for it to exit. Returns the answers in order.
pub async fn serve_events(
    mut command: tokio::process::Command,
    function: &str,
    events: Vec<Value>,
    timeout: Duration,
) -> Result<Vec<Result<Value, Value>>, InfraError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (reports, mut received) = mpsc::unbounded_channel();
    let expected = events.len();
    let state = Arc::new(State { events: Mutex::new(events.into()), reports });
    let handler = move |req| runtime(Arc::clone(&state), req);
    let server = tokio::spawn(crate::loopback::serve(listener, Arc::new(handler)));
    let mut child = as_lambda(&mut command, address, function).spawn()?;
    let answers = tokio::time::timeout(timeout, async {
        let mut answers = Vec::with_capacity(expected);
        while answers.len() < expected {
            match received.recv().await {
                Some(Report::Done(outcome, _)) => answers.push(outcome),
                Some(Report::Next(_)) => {}
                None => break,
            }
        }
        answers
    })
    .await;
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    let exited = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    server.abort();
    match (answers, exited) {
        (Ok(answers), Ok(_)) if answers.len() == expected => Ok(answers),
        (Ok(answers), _) => {
            Err(InfraError::Other(format!("{function} answered {} of {expected} events", answers.len())))
        }
        (Err(_), _) => Err(InfraError::Other(format!("{function} did not answer within {timeout:?}"))),
    }
}
