//! template.yaml is the wiring's source of truth: every function in it has a binary, a
//! route and a sample event, and the other way round; the OpenAPI document has exactly the
//! template's HTTP routes; the committed openapi.json is the generated one.

use std::collections::BTreeSet;

use bestow_infra::template::{Template, workspace_root};
use lambda_http::request::LambdaRequest;

/// Decodes a sample event the way the Lambda runtime adapter does.
fn decode_event(event: serde_json::Value) -> Result<lambda_http::Request, String> {
    serde_json::from_value::<LambdaRequest>(event).map(Into::into).map_err(|e| e.to_string())
}

fn names_in(dir: &str, extension: &str) -> BTreeSet<String> {
    std::fs::read_dir(workspace_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(extension).map(str::to_owned)
        })
        .collect()
}

#[test]
fn template_binaries_events_and_routes_match_both_ways() {
    let template = Template::load_default().unwrap();
    let functions = template.functions();
    let in_template: BTreeSet<String> = functions.iter().map(|f| f.binary.clone()).collect();
    let binaries = names_in("functions/src/bin", ".rs");
    let events = names_in("events", ".json");
    let routes_and_workers: BTreeSet<String> = bestow::routes::ALL
        .iter()
        .map(|r| r.function.to_owned())
        .chain(bestow::routes::WEBHOOKS.iter().map(|r| r.function.to_owned()))
        .chain(bestow::jobs::registry::ALL.iter().map(|w| w.function.to_owned()))
        .chain(bestow::jobs::schedule::ALL.iter().map(|s| s.function.to_owned()))
        .collect();
    assert_eq!(in_template.len(), functions.len(), "one binary per function");
    assert_eq!(in_template, binaries, "template functions vs functions/src/bin");
    assert_eq!(in_template, events, "template functions vs events/");
    assert_eq!(in_template, routes_and_workers, "template functions vs the route list and the job registry");

    for function in &functions {
        if bestow::routes::WEBHOOKS.iter().any(|w| w.function == function.binary) {
            // A webhook: its own function URL, no authorizer (the signature authenticates),
            // and no API Gateway route.
            assert_eq!(function.function_url.as_deref(), Some("NONE"), "{}", function.logical_id);
            assert_eq!(function.http, None, "{}", function.logical_id);
            continue;
        }
        assert_eq!(function.function_url, None, "{} is not a webhook", function.logical_id);
        let events = template.root()["Resources"][function.logical_id.as_str()]["Properties"]["Events"].clone();
        let scheduled =
            events.as_mapping().is_some_and(|m| m.values().any(|e| e["Type"].as_str() == Some("ScheduleV2")));
        if bestow::jobs::schedule::by_function(&function.binary).is_some() {
            // A scheduled function: EventBridge Scheduler invokes it; it has no other trigger.
            assert!(scheduled, "{} has a ScheduleV2 event", function.logical_id);
            assert_eq!(function.http, None, "{}", function.logical_id);
            continue;
        }
        assert!(!scheduled, "{} is scheduled but not in the schedule list", function.logical_id);
        match bestow::routes::by_function(&function.binary) {
            Some(route) => assert_eq!(
                function.http,
                Some((route.method.to_owned(), route.path.to_owned())),
                "{}",
                function.logical_id
            ),
            None => {
                // A worker: fed by its own queue, which has a dead-letter queue, reporting
                // partial batch failures.
                let source = template.queue_source(&function.binary).expect("a worker has an SQS event");
                assert!(source.report_batch_item_failures, "{} reports batch item failures", function.binary);
                let queue = template.queues().into_iter().find(|q| q.logical_id == source.queue_logical_id).unwrap();
                let (dead_letter, max_receive) = queue.dead_letter.expect("every job queue has a dead-letter queue");
                assert!(max_receive >= 2, "{}", queue.logical_id);
                let visibility = queue.visibility_timeout_s.unwrap_or(30);
                let timeout = template.function_timeout(&function.binary);
                assert!(
                    visibility >= 6 * timeout,
                    "{}: visibility timeout below 6x the function timeout",
                    queue.logical_id
                );
                let alarm_id = format!("{}Alarm", dead_letter.trim_end_matches("Queue"));
                let alarm = template.root()["Resources"][alarm_id.as_str()].clone();
                assert_eq!(alarm["Type"].as_str(), Some("AWS::CloudWatch::Alarm"), "{dead_letter} has an alarm");
            }
        }
        let source =
            std::fs::read_to_string(workspace_root().join(format!("functions/src/bin/{}.rs", function.binary)))
                .unwrap();
        assert!(source.lines().count() <= 10, "{} is wiring only", function.binary);
    }
}

#[test]
fn every_sample_event_is_an_api_gateway_v2_event_of_its_route() {
    for route in bestow::routes::ALL {
        let event = crate::support::event(route.function);
        assert_eq!(event["routeKey"], format!("{} {}", route.method, route.path), "{}", route.function);
        assert_eq!(event["requestContext"]["http"]["method"], route.method);
        let request = decode_event(event.clone()).unwrap_or_else(|e| panic!("{}: {e}", route.function));
        assert_eq!(request.method().as_str(), route.method);
        if route.request.is_some() {
            assert!(event["body"].is_string(), "{} has a sample body", route.function);
        }
    }
}

#[test]
fn openapi_documents_exactly_the_templates_routes_and_is_committed() {
    let template = Template::load_default().unwrap();
    let from_template: BTreeSet<(String, String)> = template.functions().into_iter().filter_map(|f| f.http).collect();
    let document: serde_json::Value = serde_json::from_str(&bestow::openapi::to_json(bestow::routes::ALL)).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    assert_eq!(documented, from_template);
    assert!(document["components"]["schemas"]["Problem"].is_object());
    assert!(document["components"]["securitySchemes"]["cognito_jwt"].is_object());
    // Every $ref resolves.
    let text = document.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(document["components"]["schemas"][name].is_object(), "dangling $ref {name}");
    }
    let committed = std::fs::read_to_string(workspace_root().join("openapi.json")).unwrap_or_default();
    assert!(
        committed == bestow::openapi::to_json(bestow::routes::ALL),
        "openapi.json is stale: cargo run -q -p bestow-infra --bin bestow-local -- openapi > openapi.json"
    );
}

#[test]
fn every_worker_sample_event_is_an_sqs_batch_of_its_job_type() {
    for worker in bestow::jobs::registry::ALL {
        let event: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(crate::support::event(worker.function)).unwrap();
        assert!(!event.records.is_empty(), "{}", worker.function);
        for record in event.records {
            let envelope: bestow::jobs::Envelope = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
            assert_eq!(envelope.job_type, worker.job_type);
        }
    }
}
