//! The job platform with its first job, email dispatch, through a real SMTP server (the
//! sink `infra/bestow test` starts): exactly one effect per job, partial batch failures, the
//! dead-letter queue and its redrive.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bestow::jobs::Envelope;
use bestow::jobs::worker::{Outcome, process_batch, process_message};
use bestow::notifications::jobs::EmailDispatchHandler;
use bestow_tests::{Method, Stack, captured_logs, eventually, mail_for, smtp_sink_settings};
use serde_json::{Value, json};

/// A vendor whose mail goes to the sink, logging in with `password`.
async fn mailing_vendor(stack: &Stack, id: &str, password: &str) -> String {
    let owner = stack.vendor(id).await;
    let path = format!("/vendors/{id}/smtp");
    stack
        .call(Method::PUT, &path)
        .token(&owner)
        .json(&smtp_sink_settings(id, password))
        .send()
        .await
        .assert_status(200);
    owner
}

fn envelope(vendor: &str, key: &str, to: &str) -> Envelope {
    Envelope {
        job_id: bestow::store::ids::new_id(),
        job_type: "email_dispatch".into(),
        vendor_id: vendor.into(),
        idempotency_key: key.into(),
        attempt: 1,
        enqueued_at: "2026-11-25T10:00:00Z".into(),
        payload: json!({
            "message_key": key, "to_email": to, "to_name": "Ana",
            "template": "smtp_test", "vars": {"vendor_name": vendor, "smtp_host": "127.0.0.1"}
        }),
    }
}

fn record(body: String) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(bestow::store::ids::new_id());
    message.body = Some(body);
    message.attributes.insert("ApproximateReceiveCount".into(), "1".into());
    message
}

fn batch(bodies: Vec<String>) -> (SqsEvent, Vec<String>) {
    let mut event = SqsEvent::default();
    event.records = bodies.into_iter().map(record).collect();
    let ids = event.records.iter().map(|r| r.message_id.clone().unwrap()).collect();
    (event, ids)
}

fn deadline() -> i64 {
    (time_now_ms()) + 10_000
}

fn time_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn send_raw(stack: &Stack, body: &str) {
    let url = stack.local.provisioned.queue_urls["EmailDispatchQueue"].clone();
    aws_sdk_sqs::Client::new(&stack.sdk).send_message().queue_url(url).message_body(body).send().await.unwrap();
}

async fn queue_depth(stack: &Stack, logical_id: &str) -> i64 {
    let url = &stack.local.provisioned.queue_urls[logical_id];
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let n = |name: aws_sdk_sqs::types::QueueAttributeName| {
        attributes.get(&name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
    };
    n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        + n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

#[tokio::test]
async fn a_message_delivered_twice_sends_one_email_through_the_vendors_own_server() {
    let stack = Stack::start().await;
    let password = format!("pw-{}", bestow::store::ids::new_id());
    mailing_vendor(&stack, "mail-once", &password).await;
    let to = "twice@mail-once.example";
    let body = serde_json::to_string(&envelope("mail-once", "welcome-1", to)).unwrap();
    send_raw(&stack, &body).await;
    send_raw(&stack, &body).await;

    let mail = eventually(20, "the email", async || (!mail_for(to).is_empty()).then(|| mail_for(to))).await;
    eventually(20, "both deliveries processed", async || {
        (queue_depth(&stack, "EmailDispatchQueue").await == 0).then_some(())
    })
    .await;
    assert_eq!(mail_for(to).len(), 1, "one email for two deliveries");
    let message = &mail[0];
    assert_eq!(message["login"], "mail-once");
    assert_eq!(message["password"], password.as_str(), "the password came from Secrets Manager");
    assert_eq!(message["mail_from"], "gifts@mail-once.example");
    let data = message["data"].as_str().unwrap();
    assert!(data.contains("Subject: mail-once: your mail settings work"), "{data}");
    assert!(data.contains("Content-Type: text/html") && data.contains("Content-Type: text/plain"), "both parts");
    assert!(data.contains("Message-ID: <welcome-1.mail-once@mail-once.example>"), "{data}");
    assert!(!captured_logs().contains(&password), "the password never reaches the logs");
    assert!(stack.key_violations().await.is_empty());
}

#[tokio::test]
async fn two_workers_racing_on_one_job_have_one_effect() {
    let stack = Stack::start().await;
    mailing_vendor(&stack, "race-mail", "pw").await;
    let to = "race@race-mail.example";
    let body = serde_json::to_string(&envelope("race-mail", "race-1", to)).unwrap();
    let handler = EmailDispatchHandler;
    let (a, b) = tokio::join!(
        process_message(&stack.app, &handler, record(body.clone()), deadline()),
        process_message(&stack.app, &handler, record(body.clone()), deadline()),
    );
    let mut outcomes = [a, b];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert!(
        outcomes == [Outcome::Done, Outcome::Retry] || outcomes == [Outcome::Done, Outcome::Duplicate],
        "{outcomes:?}"
    );
    // And a third, later delivery is a duplicate.
    assert_eq!(process_message(&stack.app, &handler, record(body), deadline()).await, Outcome::Duplicate);
    assert_eq!(mail_for(to).len(), 1);
}

#[tokio::test]
async fn one_failing_message_in_a_batch_of_ten_is_the_only_one_returned() {
    let stack = Stack::start().await;
    mailing_vendor(&stack, "batch-mail", "pw").await;
    let mut bodies: Vec<String> = (0..9)
        .map(|i| {
            serde_json::to_string(&envelope("batch-mail", &format!("b-{i}"), &format!("r{i}@batch-mail.example")))
                .unwrap()
        })
        .collect();
    // The server answers 451 for this one: a transient failure, worth a retry.
    bodies
        .insert(4, serde_json::to_string(&envelope("batch-mail", "b-fail", "reject-temp@batch-mail.example")).unwrap());
    let (event, ids) = batch(bodies);
    let response = process_batch(&stack.app, Arc::new(EmailDispatchHandler), event, deadline()).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, [ids[4].as_str()]);
    for i in 0..9 {
        assert_eq!(mail_for(&format!("r{i}@batch-mail.example")).len(), 1, "recipient {i}");
    }
    // The failed job released its claim: the retry runs it (and fails again, still retryable).
    let (retry, retry_ids) = batch(vec![
        serde_json::to_string(&envelope("batch-mail", "b-fail", "reject-temp@batch-mail.example")).unwrap(),
    ]);
    let response = process_batch(&stack.app, Arc::new(EmailDispatchHandler), retry, deadline()).await;
    assert_eq!(response.batch_item_failures[0].item_identifier, retry_ids[0]);
}

#[tokio::test]
async fn malformed_and_permanently_failing_messages_do_not_fail_their_neighbours() {
    let stack = Stack::start().await;
    mailing_vendor(&stack, "odd-mail", "pw").await;
    let good = serde_json::to_string(&envelope("odd-mail", "good-1", "good@odd-mail.example")).unwrap();
    let mut wrong_payload = envelope("odd-mail", "bad-payload", "x@odd-mail.example");
    wrong_payload.payload = json!({"to_email": 42});
    let mut foreign_vendor = envelope("odd-mail", "bad-vendor", "x@odd-mail.example");
    foreign_vendor.vendor_id = "V#evil".into();
    let rejected = serde_json::to_string(&envelope("odd-mail", "perm-1", "reject-perm@odd-mail.example")).unwrap();
    let (event, ids) = batch(vec![
        "{not json".to_owned(),
        good,
        serde_json::to_string(&wrong_payload).unwrap(),
        serde_json::to_string(&foreign_vendor).unwrap(),
        rejected.clone(),
    ]);
    let response = process_batch(&stack.app, Arc::new(EmailDispatchHandler), event, deadline()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "permanent failures are not retried: {:?}",
        response.batch_item_failures
    );
    assert_eq!(mail_for("good@odd-mail.example").len(), 1);
    let logs = captured_logs();
    assert!(
        logs.lines().any(|l| l.contains(&ids[0]) && l.contains("undecodable message")),
        "logged with its message id"
    );
    assert!(logs.lines().any(|l| l.contains(&ids[2]) && l.contains("undecodable payload")));
    // A permanent SMTP refusal is recorded: a redelivery is not run again.
    let (again, _) = batch(vec![rejected]);
    let handler = EmailDispatchHandler;
    let outcome = process_message(&stack.app, &handler, again.records.into_iter().next().unwrap(), deadline()).await;
    assert_eq!(outcome, Outcome::Duplicate);
    // The same key with another payload is refused, not silently skipped as a duplicate.
    let reused = serde_json::to_string(&envelope("odd-mail", "good-1", "someone-else@odd-mail.example")).unwrap();
    assert_eq!(process_message(&stack.app, &handler, record(reused), deadline()).await, Outcome::Permanent);
    assert!(mail_for("someone-else@odd-mail.example").is_empty());
}

#[tokio::test]
async fn a_job_that_keeps_failing_lands_in_the_dead_letter_queue_and_redrives_once_fixed() {
    let stack = Stack::start().await;
    let owner = mailing_vendor(&stack, "dlq-mail", "pw").await;
    // The vendor's SMTP server is down (nothing listens on that port): every try is a
    // transient failure.
    let mut broken = smtp_sink_settings("dlq-mail", "pw");
    broken["port"] = json!(9);
    let etag = stack.call(Method::GET, "/vendors/dlq-mail/smtp").token(&owner).send().await.etag();
    let reply = stack
        .call(Method::PUT, "/vendors/dlq-mail/smtp")
        .token(&owner)
        .header("if-match", &etag)
        .json(&broken)
        .send()
        .await;
    reply.assert_status(200);

    let sent = 3;
    for i in 0..sent {
        let body =
            serde_json::to_string(&envelope("dlq-mail", &format!("d-{i}"), &format!("d{i}@dlq-mail.example"))).unwrap();
        send_raw(&stack, &body).await;
    }
    // maxReceiveCount (5) tries, 2 s apart: then moto moves them to the dead-letter queue.
    eventually(60, "all messages in the dead-letter queue", async || {
        (queue_depth(&stack, "EmailDispatchDeadLetterQueue").await == sent).then_some(())
    })
    .await;
    assert_eq!(queue_depth(&stack, "EmailDispatchQueue").await, 0, "count in = count in the DLQ");

    // The vendor fixes its server; the operator redrives.
    let fixed = smtp_sink_settings("dlq-mail", "pw");
    let reply = stack
        .call(Method::PUT, "/vendors/dlq-mail/smtp")
        .token(&owner)
        .header("if-match", &reply.etag())
        .json(&fixed)
        .send()
        .await;
    reply.assert_status(200);
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let urls = &stack.local.provisioned.queue_urls;
    let moved =
        bestow_infra::ops::redrive(&sqs, &urls["EmailDispatchDeadLetterQueue"], &urls["EmailDispatchQueue"], None)
            .await
            .unwrap();
    assert_eq!(moved, sent);
    for i in 0..sent {
        let to = format!("d{i}@dlq-mail.example");
        eventually(20, "the redriven email", async || (mail_for(&to).len() == 1).then_some(())).await;
    }
    assert_eq!(queue_depth(&stack, "EmailDispatchDeadLetterQueue").await, 0, "nothing lost, nothing left");
}

#[tokio::test]
async fn the_smtp_test_route_queues_a_job_that_the_worker_delivers() {
    let stack = Stack::start().await;
    let owner = stack.vendor("route-mail").await;
    let path = "/vendors/route-mail/smtp/test";
    let body = json!({"to_email": "me@route-mail.example"});
    // No SMTP settings yet: nothing to test.
    stack.call(Method::POST, path).token(&owner).json(&body).send().await.assert_problem(404);
    stack
        .call(Method::PUT, "/vendors/route-mail/smtp")
        .token(&owner)
        .json(&smtp_sink_settings("route-mail", "pw"))
        .send()
        .await
        .assert_status(200);
    stack.call(Method::POST, path).token(&owner).json(&json!({"to_email": "nope"})).send().await.assert_problem(422);
    let accepted = stack.call(Method::POST, path).token(&owner).json(&body).send().await;
    accepted.assert_status(202);
    assert_eq!(accepted.json["job_type"], "email_dispatch");
    assert_eq!(accepted.json["job_id"].as_str().map(str::len), Some(26));
    let mail = eventually(20, "the test email", async || {
        let mail = mail_for("me@route-mail.example");
        (!mail.is_empty()).then_some(mail)
    })
    .await;
    let data: &Value = &mail[0]["data"];
    assert!(data.as_str().unwrap().contains("Vendor route-mail"), "{data}");
}

#[tokio::test]
async fn a_claim_taken_over_after_expiry_is_no_longer_the_first_workers() {
    use bestow::jobs::idempotency::{Claim, IdempotencyStore, now_ms};
    let stack = Stack::start().await;
    stack.vendor("takeover").await;
    let scope = bestow::tenancy::guard::job_scope("takeover", "email_dispatch").unwrap();
    let store = IdempotencyStore::new(&stack.app.table, &scope);
    let (kind, key, hash) = ("job:email_dispatch", "t-1", "same-payload");
    // Worker A claims with an expiry already past (it "crashed"); B takes over.
    let Claim::Acquired(a) = store.claim(kind, key, hash, now_ms() - 1, now_ms()).await.unwrap() else { panic!() };
    let Claim::Acquired(b) = store.claim(kind, key, hash, now_ms() + 60_000, now_ms()).await.unwrap() else { panic!() };
    assert_ne!(a, b);
    // A wakes up: it can neither release nor complete B's claim.
    assert!(store.release(kind, key, &a).await.is_err());
    assert!(store.complete(kind, key, &a, &json!({"by": "a"}), now_ms()).await.is_err());
    assert_eq!(store.claim(kind, key, hash, now_ms() + 60_000, now_ms()).await.unwrap(), Claim::InProgress);
    store.complete(kind, key, &b, &json!({"by": "b"}), now_ms()).await.unwrap();
    assert_eq!(
        store.claim(kind, key, hash, now_ms() + 60_000, now_ms()).await.unwrap(),
        Claim::Completed(json!({"by": "b"}))
    );
    // Keys whose parts contain the separator do not meet.
    let Claim::Acquired(_) = store.claim("job:x#y", "z", hash, now_ms() + 60_000, now_ms()).await.unwrap() else {
        panic!()
    };
    let other = store.claim("job:x", "y#z", hash, now_ms() + 60_000, now_ms()).await.unwrap();
    assert!(matches!(other, Claim::Acquired(_)), "{other:?}");
}

#[tokio::test]
async fn a_slow_job_is_cut_at_the_deadline_and_released_for_a_retry() {
    let stack = Stack::start().await;
    mailing_vendor(&stack, "slow-mail", "pw").await;
    let body = serde_json::to_string(&envelope("slow-mail", "slow-1", "slow@slow-mail.example")).unwrap();
    // A deadline 1 s away is inside the worker's 2 s margin: the handler gets no time.
    let outcome = process_message(&stack.app, &EmailDispatchHandler, record(body.clone()), time_now_ms() + 1_000).await;
    assert_eq!(outcome, Outcome::Retry, "no time left: a retryable failure, not a hang");
    // The claim was released: the next delivery runs and sends.
    assert_eq!(process_message(&stack.app, &EmailDispatchHandler, record(body), deadline()).await, Outcome::Done);
    assert_eq!(mail_for("slow@slow-mail.example").len(), 1);
}

#[tokio::test]
async fn through_the_queue_only_the_failed_message_of_a_batch_comes_back() {
    let stack = Stack::start().await;
    mailing_vendor(&stack, "queue-mail", "pw").await;
    let url = stack.local.provisioned.queue_urls["EmailDispatchQueue"].clone();
    let entries = (0..10)
        .map(|i| {
            let to =
                if i == 6 { "reject-temp@queue-mail.example".to_owned() } else { format!("q{i}@queue-mail.example") };
            let body = serde_json::to_string(&envelope("queue-mail", &format!("q-{i}"), &to)).unwrap();
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .build()
                .unwrap()
        })
        .collect();
    aws_sdk_sqs::Client::new(&stack.sdk)
        .send_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    for i in (0..10).filter(|i| *i != 6) {
        let to = format!("q{i}@queue-mail.example");
        eventually(20, "each good message's email", async || (mail_for(&to).len() == 1).then_some(())).await;
    }
    // The failing one alone keeps coming back, then rests in the DLQ: in = delivered + DLQ.
    eventually(60, "the failing message in the DLQ", async || {
        (queue_depth(&stack, "EmailDispatchDeadLetterQueue").await == 1).then_some(())
    })
    .await;
    assert_eq!(queue_depth(&stack, "EmailDispatchQueue").await, 0);
    for i in (0..10).filter(|i| *i != 6) {
        assert_eq!(mail_for(&format!("q{i}@queue-mail.example")).len(), 1, "sent once, not re-run with its neighbour");
    }
}
