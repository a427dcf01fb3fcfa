//! Optimistic concurrency: every versioned resource answers an ETag; a write must name the
//! version it read; a stale one is 412 and the newer data stays.

use std::sync::Arc;

use bestow_tests::{Method, Stack};
use serde_json::json;

use crate::support::{configured_secret, shipping_rules};

#[tokio::test]
async fn stale_if_match_is_412_and_keeps_the_newer_data() {
    let stack = Stack::start().await;
    let owner = stack.vendor("occ").await;
    let path = "/vendors/occ/shipping";

    let created = stack.call(Method::PUT, path).token(&owner).json(&shipping_rules()).send().await;
    created.assert_status(200);
    assert_eq!(created.etag(), "\"v1\"");

    // Two editors read v1.
    let read = stack.call(Method::GET, path).token(&owner).send().await;
    let etag = read.etag();
    let mut first = read.json.clone();
    first["methods"][2]["rate"]["amount_minor"] = json!(2999);
    let mut second = read.json.clone();
    second["methods"][2]["rate"]["amount_minor"] = json!(1);

    let saved = stack.call(Method::PUT, path).token(&owner).header("if-match", &etag).json(&first).send().await;
    saved.assert_status(200);
    assert_eq!(saved.etag(), "\"v2\"");
    let stale = stack.call(Method::PUT, path).token(&owner).header("if-match", &etag).json(&second).send().await;
    assert!(stale.assert_problem(412).ends_with("/precondition-failed"));

    let now = stack.call(Method::GET, path).token(&owner).send().await;
    assert_eq!(now.json["methods"][2]["rate"]["amount_minor"], 2999);
    assert_eq!(now.etag(), "\"v2\"");

    // Overwriting without naming a version is refused once the resource exists.
    stack.call(Method::PUT, path).token(&owner).json(&second).send().await.assert_problem(428);
    stack
        .call(Method::PUT, path)
        .token(&owner)
        .header("if-match", "garbage")
        .json(&second)
        .send()
        .await
        .assert_problem(412);
    // Weak form of the current tag is accepted.
    stack
        .call(Method::PUT, path)
        .token(&owner)
        .header("if-match", "W/\"v2\"")
        .json(&first)
        .send()
        .await
        .assert_status(200);
}

#[tokio::test]
async fn concurrent_writers_of_one_version_yield_exactly_one_winner() {
    let stack = Arc::new(Stack::start().await);
    let owner = stack.vendor("race").await;
    let path = "/vendors/race/shipping";
    stack.call(Method::PUT, path).token(&owner).json(&shipping_rules()).send().await.assert_status(200);

    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let (stack, owner) = (Arc::clone(&stack), owner.clone());
            tokio::spawn(async move {
                let mut rules = shipping_rules();
                rules["methods"][2]["rate"]["amount_minor"] = json!(1000 + i);
                stack.call(Method::PUT, path).token(&owner).header("if-match", "\"v1\"").json(&rules).send().await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for attempt in attempts {
        replies.push(attempt.await.expect("task"));
    }
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 412));
    let stored = stack.call(Method::GET, path).token(&owner).send().await;
    assert_eq!(stored.json, winners[0].json, "the stored rules are the winner's");
}

#[tokio::test]
async fn profile_updates_need_the_current_version_and_keep_the_directory_in_step() {
    let stack = Stack::start().await;
    let owner = stack.vendor("prof").await;
    let read = stack.call(Method::GET, "/vendors/prof").token(&owner).send().await;
    read.assert_status(200);
    let etag = read.etag();

    stack
        .call(Method::PATCH, "/vendors/prof")
        .token(&owner)
        .json(&json!({"name": "No tag"}))
        .send()
        .await
        .assert_problem(428);
    let renamed = stack
        .call(Method::PATCH, "/vendors/prof")
        .token(&owner)
        .header("if-match", &etag)
        .json(&json!({"name": "Prof Gifts"}))
        .send()
        .await;
    renamed.assert_status(200);
    assert_eq!(renamed.json["name"], "Prof Gifts");
    assert_eq!(renamed.json["country"], "DE", "fields not sent stay");
    let stale = stack
        .call(Method::PATCH, "/vendors/prof")
        .token(&owner)
        .header("if-match", &etag)
        .json(&json!({"name": "Stale"}))
        .send()
        .await;
    stale.assert_problem(412);

    let listed = stack.call(Method::GET, "/vendors").token(&stack.admin()).send().await;
    assert_eq!(listed.json["items"][0]["name"], "Prof Gifts", "{}", listed.text);
}

#[tokio::test]
async fn concurrent_credential_writers_leave_the_winners_secret_in_force() {
    let stack = Arc::new(Stack::start().await);
    let owner = stack.vendor("race-smtp").await;
    let path = "/vendors/race-smtp/smtp";
    let settings = |password: &str| {
        json!({"host": "smtp.example.com", "port": 587, "username": "u", "password": password,
               "from_email": "a@race.example", "from_name": "Race", "security": "starttls"})
    };
    stack.call(Method::PUT, path).token(&owner).json(&settings("first-password")).send().await.assert_status(200);

    let attempts: Vec<_> = (0..6)
        .map(|i| {
            let (stack, owner) = (Arc::clone(&stack), owner.clone());
            tokio::spawn(async move {
                let password = format!("racer-{i}-password");
                let reply = stack
                    .call(Method::PUT, path)
                    .token(&owner)
                    .header("if-match", "\"v1\"")
                    .json(&settings(&password))
                    .send()
                    .await;
                (password, reply)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for attempt in attempts {
        let (password, reply) = attempt.await.expect("task");
        match reply.status {
            200 => winners.push(password),
            412 => {}
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    // Losers wrote secret versions too, but the configuration names the winner's.
    let stored = configured_secret(&stack, "race-smtp", "smtp").await;
    assert_eq!(stored["password"], winners[0]);
}
