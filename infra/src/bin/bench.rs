//! `bestow-bench`: measurements that are counts or ratios from one run, not timed tests.
//!
//!   bestow-bench jobs [N]   N email jobs (default 200), each delivered twice, through the
//!                           local stack's queue, pollers, worker runtime and SMTP sink
//!
//! Needs the emulator and the SMTP sink (`infra/bestow bench jobs` starts both).

use std::time::Instant;

use bestow::jobs::Envelope;
use bestow::store::counter::CallCounter;
use bestow_infra::InfraError;
use bestow_infra::devtoken::{DevKeys, DevUser};
use bestow_infra::gateway::Gateway;
use bestow_infra::seed::call;
use bestow_infra::stack::{LocalStack, StackOptions};
use http::Method;
use serde_json::json;

fn mail_count(dir: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".json")).count())
        .unwrap_or(0)
}

async fn jobs(n: usize) -> Result<(), InfraError> {
    let smtp_port: u16 = std::env::var("BESTOW_BENCH_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| InfraError::Other("BESTOW_BENCH_SMTP_PORT is not set: run infra/bestow bench jobs".into()))?;
    let maildir = std::env::var("BESTOW_BENCH_MAILDIR")
        .map_err(|_| InfraError::Other("BESTOW_BENCH_MAILDIR is not set".into()))?;
    let counter = CallCounter::default();
    let prefix = format!("bestow-bench-{}", &bestow::store::ids::new_id()[16..]);
    let stack = LocalStack::provision(StackOptions {
        prefix,
        stage: "bench".into(),
        secrets_prefix: None,
        visibility_override: Some(30),
        counter: Some(counter.clone()),
    })
    .await?;
    // The vendor and its SMTP settings, through the API.
    let keys = DevKeys::random();
    let gateway = Gateway::new(stack.app.clone(), keys.clone(), bestow::routes::ALL);
    let admin = keys.issue(&DevUser { sub: "bench", group: "platform_admin", vendor_id: None }, 600);
    let vendor =
        json!({"id": "bench", "name": "Bench", "contact_email": "b@bench.example", "country": "DE", "currency": "EUR"});
    call(&gateway, &admin, Method::POST, "/vendors", Some(vendor), None).await?;
    let smtp = json!({"host": "127.0.0.1", "port": smtp_port, "username": "bench", "password": "pw", "from_email": "b@bench.example", "from_name": "Bench", "security": "none"});
    let (status, _, body) = call(&gateway, &admin, Method::PUT, "/vendors/bench/smtp", Some(smtp), None).await?;
    if status != 200 {
        return Err(InfraError::Other(format!("smtp settings: {status} {body}")));
    }

    // N distinct jobs, each sent twice (a duplicate delivery per job), ten per call.
    let queue = stack.provisioned.queue_urls.get("EmailDispatchQueue").cloned().unwrap_or_default();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let bodies: Vec<String> = (0..n)
        .map(|i| {
            let envelope = Envelope {
                job_id: bestow::store::ids::new_id(),
                job_type: "email_dispatch".into(),
                vendor_id: "bench".into(),
                idempotency_key: format!("bench-{i}"),
                attempt: 1,
                enqueued_at: "2026-11-25T00:00:00Z".into(),
                payload: json!({"message_key": format!("bench-{i}"), "to_email": format!("r{i}@bench.example"), "to_name": null,
                                "template": "smtp_test", "vars": {"vendor_name": "Bench", "smtp_host": "127.0.0.1"}}),
            };
            serde_json::to_string(&envelope).unwrap_or_default()
        })
        .collect();
    let before_mail = mail_count(&maildir);
    for chunk in bodies.iter().chain(bodies.iter()).collect::<Vec<_>>().chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(*body)
                    .build()
                    .ok()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(&queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| InfraError::Emulator(e.to_string()))?;
    }
    counter.reset();
    let started = Instant::now();
    let pollers = stack.spawn_pollers();
    // Done when every job has mailed and the queue is empty (duplicates consumed too).
    loop {
        let mailed = mail_count(&maildir) - before_mail;
        let depth = bestow_infra::ops::depth(&sqs, &queue).await?;
        if mailed >= n && depth == 0 {
            break;
        }
        if started.elapsed().as_secs() > 600 {
            return Err(InfraError::Other(format!("only {mailed} of {n} mailed after 10 minutes")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    pollers.iter().for_each(|p| p.abort());
    let mailed = mail_count(&maildir) - before_mail;
    let calls = counter.snapshot();
    let get = |op: &str| calls.get(&format!("DynamoDB_20120810.{op}")).copied().unwrap_or(0);
    let runtime_calls = get("PutItem") + get("UpdateItem") + get("DeleteItem");
    println!(
        "jobs benchmark: {n} jobs, each delivered twice ({} messages), through moto + the local pollers + the SMTP sink",
        2 * n
    );
    println!("  emails sent                      {mailed} (one per job: duplicates had no effect)");
    println!(
        "  DynamoDB calls by operation      {:?}",
        calls.iter().filter(|(k, _)| k.starts_with("DynamoDB")).collect::<Vec<_>>()
    );
    println!(
        "  worker runtime calls per job     {:.2} (claim + complete; goal 2)",
        get("PutItem").saturating_sub(n as u64) as f64 / n as f64 + get("UpdateItem") as f64 / n as f64
    );
    println!(
        "  runtime calls per duplicate      {:.2} (one refused claim)",
        (get("PutItem") as f64 - n as f64) / n as f64
    );
    println!("  all runtime calls per message    {:.2}", runtime_calls as f64 / (2 * n) as f64);
    println!("  handler reads per job            {:.2} (its SMTP settings: GetItem)", get("GetItem") as f64 / n as f64);
    println!(
        "  secret reads                     {} (the cache held the password this process had just set; a fresh worker reads it once per TTL)",
        calls.get("secretsmanager.GetSecretValue").copied().unwrap_or(0)
    );
    println!(
        "  throughput                       {:.0} messages/s, {:.0} jobs/s ({:.2} s, debug build, one process)",
        (2 * n) as f64 / elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if mailed != n {
        return Err(InfraError::Other(format!("{mailed} emails for {n} jobs")));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["jobs"] => jobs(200).await,
        ["jobs", n] => match n.parse() {
            Ok(n) if n > 0 => jobs(n).await,
            _ => Err(InfraError::Other(format!("not a count: {n}"))),
        },
        _ => Err(InfraError::Other("usage: bestow-bench jobs [N]".into())),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bestow-bench: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
