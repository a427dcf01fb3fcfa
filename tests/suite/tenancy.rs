//! Tenant isolation: vendor A's staff, on vendor B's ids, through every route, get 404 and
//! change nothing; every item stays under its own vendor's key prefix.

use bestow::http::Handler;
use bestow_tests::{Method, Stack};

use crate::support::{catalog_ids, configure_fully, fill, partition_snapshot, sample_body, secret_versions};

#[tokio::test]
async fn every_route_refuses_another_vendors_ids_and_changes_nothing() {
    let stack = Stack::start().await;
    // Look-alike tenants: same configuration, ids that share a prefix.
    let owner_a = stack.vendor("iso").await;
    let owner_b = stack.vendor("iso-b").await;
    configure_fully(&stack, "iso", &owner_a).await;
    configure_fully(&stack, "iso-b", &owner_b).await;
    let ids_a = catalog_ids(&stack, "iso", &owner_a).await;
    let ids_b = catalog_ids(&stack, "iso-b", &owner_b).await;
    let before = partition_snapshot(&stack, "iso-b").await;
    assert!(before.len() > 6 + 100, "vendor B is fully configured and has a catalogue: {}", before.len());
    let secrets_before = secret_versions(&stack, "iso-b").await;
    assert!(secrets_before.iter().all(|s| !s.ends_with("absent")), "{secrets_before:?}");

    let mut checked = 0;
    for route in bestow::routes::ALL {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let body = sample_body(route.function);
        for role in ["owner", "manager", "fulfillment", "buyer"] {
            let token = stack.staff("iso", role);
            let path_b = fill(route.path, "iso-b", &ids_b);
            let mut call = stack.call(method.clone(), &path_b).token(&token).header("if-match", "\"v1\"");
            if let Some(body) = &body {
                call = call.json(body);
            }
            let reply = call.send().await;
            match route.handler {
                Handler::Tenant { .. } => {
                    let kind = reply.assert_problem(404);
                    assert!(kind.ends_with("/not-found"), "{}", reply.text);
                    assert!(!reply.text.contains("Vendor iso-b"), "no data of B leaks: {}", reply.text);
                }
                Handler::Platform { .. } => {
                    reply.assert_problem(403);
                }
                // No vendor in the path: storefront isolation has its own tests.
                Handler::Public { .. } => {}
            }
            checked += 1;
        }
        // B's ids under A's own vendor id are not found either.
        if matches!(route.handler, Handler::Tenant { .. })
            && fill(route.path, "iso", &ids_b) != fill(route.path, "iso", &ids_a)
        {
            let path = fill(route.path, "iso", &ids_b);
            // Routes only the platform's admins may call are tried as an admin.
            let token = if route.roles().contains(&bestow::tenancy::Role::Owner) {
                stack.staff("iso", "owner")
            } else {
                stack.admin()
            };
            let mut call = stack.call(method.clone(), &path).token(&token).header("if-match", "\"v1\"");
            if let Some(body) = &body {
                call = call.json(body);
            }
            let reply = call.send().await;
            assert!(
                reply.assert_problem(404).ends_with("/not-found"),
                "{} with B's ids: {}",
                route.function,
                reply.text
            );
        }
        // The control: the same route on A's own ids is not refused for tenancy.
        if let Handler::Tenant { .. } = route.handler {
            let path_a = fill(route.path, "iso", &ids_a);
            let token = if route.roles().contains(&bestow::tenancy::Role::Owner) {
                stack.staff("iso", "owner")
            } else {
                stack.admin()
            };
            let reply = stack.call(method.clone(), &path_a).token(&token).send().await;
            assert_ne!(reply.status, 404, "{} on A's own id: {}", route.function, reply.text);
        }
    }
    assert_eq!(checked, bestow::routes::ALL.len() * 4);

    assert_eq!(partition_snapshot(&stack, "iso-b").await, before, "vendor B's items are unchanged");
    assert_eq!(secret_versions(&stack, "iso-b").await, secrets_before, "vendor B's secrets have no new version");
    let violations = stack.key_violations().await;
    assert!(violations.is_empty(), "items outside their vendor's prefix: {violations:?}");
}

#[tokio::test]
async fn platform_admins_reach_every_vendor_and_staff_only_their_own() {
    let stack = Stack::start().await;
    let owner_a = stack.vendor("alpha").await;
    stack.vendor("beta").await;
    stack.call(Method::GET, "/vendors/beta").token(&stack.admin()).send().await.assert_status(200);
    stack.call(Method::GET, "/vendors/alpha").token(&owner_a).send().await.assert_status(200);
    stack.call(Method::GET, "/vendors/beta").token(&owner_a).send().await.assert_problem(404);
    // An id that could not even be a vendor is not found either (no 400 that would hint).
    stack.call(Method::GET, "/vendors/BETA%23PROFILE").token(&owner_a).send().await.assert_problem(404);
    assert!(stack.key_violations().await.is_empty());
}
