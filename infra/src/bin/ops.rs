//! `bestow-ops`: the job queues from an operator's seat.
//!
//!   bestow-ops [--prefix P] queues                 every queue with its depths
//!   bestow-ops [--prefix P] peek <queue> [N]       up to N messages (default 5), left in place
//!   bestow-ops [--prefix P] redrive <dlq> [--to <queue>]
//!                                                  move a dead-letter queue back to its source
//!   bestow-ops [--prefix P] purge <queue> --yes    delete every message of a queue
//!
//! Locally (`infra/bestow ops …`) it talks to the stack's moto; with normal AWS credentials
//! and no `AWS_ENDPOINT_URL` to a deployed stage (`--prefix` = the stack name). Queue names
//! may be given without the prefix.

use std::io::IsTerminal;

use bestow_infra::InfraError;
use bestow_infra::ops::{self, Progress};

async fn resolve(sqs: &aws_sdk_sqs::Client, prefix: &str, name: &str) -> Result<(String, String), InfraError> {
    let queues = ops::list(sqs, prefix).await?;
    // An exact name, with or without the prefix; else one queue whose name contains it
    // (deployed names carry a CloudFormation suffix). Never a guess among several.
    let exact = queues.iter().find(|q| q.name == name || q.name == format!("{prefix}-{name}"));
    let containing: Vec<_> = queues.iter().filter(|q| q.name.to_lowercase().contains(&name.to_lowercase())).collect();
    match (exact, containing.as_slice()) {
        (Some(q), _) => Ok((q.name.clone(), q.url.clone())),
        (None, [q]) => Ok((q.name.clone(), q.url.clone())),
        (None, []) => Err(InfraError::Other(format!("no queue {name} under prefix {prefix}"))),
        (None, several) => Err(InfraError::Other(format!(
            "{name} matches several queues: {}",
            several.iter().map(|q| q.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

async fn run(args: &[String]) -> Result<(), InfraError> {
    let (prefix, rest) = match args {
        [flag, prefix, rest @ ..] if flag == "--prefix" => (prefix.clone(), rest),
        rest => ("bestow-local".to_owned(), rest),
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match rest.as_slice() {
        ["queues"] => {
            let queues = ops::list(&sqs, &prefix).await?;
            println!("{:<48} {:>8} {:>9} {:>8}  dead-letter / source", "queue", "visible", "in flight", "delayed");
            for q in &queues {
                let link = match (&q.dead_letter, q.source_of.is_empty()) {
                    (Some(dlq), _) => format!("-> {dlq}"),
                    (None, false) => format!("<- {}", q.source_of.join(", ")),
                    (None, true) => String::new(),
                };
                println!("{:<48} {:>8} {:>9} {:>8}  {link}", q.name, q.visible, q.in_flight, q.delayed);
            }
            println!("{} queues", queues.len());
        }
        ["peek", queue, more @ ..] => {
            let max = more.first().and_then(|n| n.parse().ok()).unwrap_or(5);
            let (name, url) = resolve(&sqs, &prefix, queue).await?;
            let messages = ops::peek(&sqs, &url, max).await?;
            for (id, receives, body) in &messages {
                println!("{id} (received {receives} times)\n  {body}");
            }
            println!("{} messages shown from {name}", messages.len());
        }
        ["redrive", dlq, more @ ..] => {
            let (dlq_name, dlq_url) = resolve(&sqs, &prefix, dlq).await?;
            let target = match more {
                ["--to", queue] => resolve(&sqs, &prefix, queue).await?,
                [] => {
                    let queues = ops::list(&sqs, &prefix).await?;
                    let source = queues
                        .iter()
                        .find(|q| q.name == dlq_name)
                        .and_then(|q| q.source_of.first().cloned())
                        .ok_or_else(|| InfraError::Other(format!("{dlq_name} is no queue's dead-letter queue; say --to <queue>")))?;
                    resolve(&sqs, &prefix, &source).await?
                }
                _ => return Err(InfraError::Other("usage: redrive <dlq> [--to <queue>]".into())),
            };
            let total = ops::depth(&sqs, &dlq_url).await?;
            let out: Box<dyn std::io::Write> = Box::new(std::io::stderr());
            let progress = std::io::stderr().is_terminal().then(|| Progress { label: "redrive", total, out });
            let moved = ops::redrive(&sqs, &dlq_url, &target.1, progress).await?;
            println!("moved {moved} messages from {dlq_name} to {}", target.0);
        }
        ["purge", queue, "--yes"] => {
            let (name, url) = resolve(&sqs, &prefix, queue).await?;
            let count = ops::purge(&sqs, &url).await?;
            println!("purged {name} ({count} messages)");
        }
        ["purge", _] => return Err(InfraError::Other("purge deletes messages for good: add --yes".into())),
        _ => return Err(InfraError::Other("usage: bestow-ops [--prefix P] queues | peek <queue> [N] | redrive <dlq> [--to <queue>] | purge <queue> --yes".into())),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bestow-ops: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
