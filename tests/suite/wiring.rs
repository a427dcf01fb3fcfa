//! template.yaml is the wiring's source of truth: every function in it has a binary, a
//! route and a sample event, and the other way round; the OpenAPI document has exactly the
//! template's HTTP routes; the committed openapi.json is the generated one.

use std::collections::BTreeSet;

use bestow_infra::template::{Template, workspace_root};
use lambda_http::request::LambdaRequest;

/// Decodes a sample event the way the Lambda runtime adapter does.
fn decode_event(event: serde_json::Value) -> Result<lambda_http::Request, String> {
    serde_json::from_value::<LambdaRequest>(event)
        .map(Into::into)
        .map_err(|e| e.to_string())
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
    let routes: BTreeSet<String> = bestow::routes::ALL
        .iter()
        .map(|r| r.function.to_owned())
        .collect();
    assert_eq!(
        in_template.len(),
        functions.len(),
        "one binary per function"
    );
    assert_eq!(
        in_template, binaries,
        "template functions vs functions/src/bin"
    );
    assert_eq!(in_template, events, "template functions vs events/");
    assert_eq!(in_template, routes, "template functions vs the route list");

    for function in &functions {
        let route = bestow::routes::by_function(&function.binary).unwrap();
        assert_eq!(
            function.http,
            Some((route.method.to_owned(), route.path.to_owned())),
            "{}",
            function.logical_id
        );
        let source = std::fs::read_to_string(
            workspace_root().join(format!("functions/src/bin/{}.rs", function.binary)),
        )
        .unwrap();
        assert!(
            source.lines().count() <= 10,
            "{} is wiring only",
            function.binary
        );
    }
}

#[test]
fn every_sample_event_is_an_api_gateway_v2_event_of_its_route() {
    for route in bestow::routes::ALL {
        let event = crate::support::event(route.function);
        assert_eq!(
            event["routeKey"],
            format!("{} {}", route.method, route.path),
            "{}",
            route.function
        );
        assert_eq!(event["requestContext"]["http"]["method"], route.method);
        let request =
            decode_event(event.clone()).unwrap_or_else(|e| panic!("{}: {e}", route.function));
        assert_eq!(request.method().as_str(), route.method);
        if route.request.is_some() {
            assert!(
                event["body"].is_string(),
                "{} has a sample body",
                route.function
            );
        }
    }
}

#[test]
fn openapi_documents_exactly_the_templates_routes_and_is_committed() {
    let template = Template::load_default().unwrap();
    let from_template: BTreeSet<(String, String)> = template
        .functions()
        .into_iter()
        .filter_map(|f| f.http)
        .collect();
    let document: serde_json::Value =
        serde_json::from_str(&bestow::openapi::to_json(bestow::routes::ALL)).unwrap();
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
        assert!(
            document["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    let committed =
        std::fs::read_to_string(workspace_root().join("openapi.json")).unwrap_or_default();
    assert!(
        committed == bestow::openapi::to_json(bestow::routes::ALL),
        "openapi.json is stale: cargo run -q -p bestow-infra --bin bestow-local -- openapi > openapi.json"
    );
}
