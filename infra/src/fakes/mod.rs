//! Local fakes of third-party HTTP APIs, for the tests and the local stack: each one serves the
//! real API's shapes on a loopback port and lets a test drive what the real service would do
//! on its own (a payment succeeding, a refund settling).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub mod shopify;
pub mod stripe;
pub mod xero;

/// How long the endpoint has to answer one webhook delivery attempt.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// POSTs a webhook over a plain HTTP/1.1 connection to an `http://host:port/path` URL, with
/// `headers` in order (Host, Content-Length and Connection are added): the answer's status, or
/// why there was none. Shared by the fakes, which each send their own vendor's headers.
async fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Result<u16, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |slash| rest.split_at(slash));
    let headers: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut response = Vec::new();
    let exchange = async {
        let mut stream = TcpStream::connect(authority).await?;
        stream.write_all(request.as_bytes()).await?;
        // Read until the endpoint closes the connection (it was asked to, after its answer).
        let mut chunk = [0; 4096];
        loop {
            match stream.read(&mut chunk).await? {
                0 => return Ok::<_, std::io::Error>(()),
                n => response.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let outcome = tokio::time::timeout(WEBHOOK_TIMEOUT, exchange).await;
    // An answer counts even if the connection then ends badly or stays open.
    let status_line = response.split(|&b| b == b'\n').next().filter(|_| response.contains(&b'\n'));
    let status = status_line
        .map(String::from_utf8_lossy)
        .filter(|line| line.starts_with("HTTP/"))
        .and_then(|line| line.split(' ').nth(1)?.parse::<u16>().ok());
    match (status, outcome) {
        (Some(status), _) => Ok(status),
        (None, Ok(Ok(()))) => Err("the connection closed without an HTTP answer".to_owned()),
        (None, Ok(Err(error))) => Err(error.to_string()),
        (None, Err(_)) => Err(format!("no answer within {} s", WEBHOOK_TIMEOUT.as_secs())),
    }
}
