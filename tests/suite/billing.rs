//! Money after the sale: a payout cycle closes into one statement (JSON and PDF) built from the
//! ledger, becomes one Xero invoice with a line per fee type and the statement attached, and
//! reconciles when the payout is recorded. Xero is the local fake, over real HTTP.

use bestow_tests::{Method, Stack, eventually};
use serde_json::{Value, json};

use crate::orders::{GiftShop, gift_shop, now, recipients};

/// Connects the platform's Xero organisation as an admin would: the consent URL, Xero's
/// redirect with a code, and the callback.
async fn connect_xero(stack: &Stack) -> Value {
    let started = stack.call(Method::POST, "/xero/connect").token(&stack.admin()).send().await;
    started.assert_status(200);
    let url = started.json["authorize_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(stack.xero.base_url()) && url.contains("offline_access"), "{url}");
    // The admin consents on Xero's screen (the fake approves at once) and is sent back.
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let consent = no_redirects.get(&url).send().await.unwrap();
    assert_eq!(consent.status(), 302);
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    let query = back.strip_prefix(&format!("{}/xero/callback?", stack.base)).expect("back to the callback").to_owned();
    let done = stack.call(Method::GET, &format!("/xero/callback?{query}")).send().await;
    done.assert_status(200);
    assert_eq!(done.json["status"], "connected");
    assert_eq!(done.json["tenant_id"], stack.xero.tenant_id());
    // The state is single-use.
    stack.call(Method::GET, &format!("/xero/callback?{query}")).send().await.assert_status(400);
    done.json
}

/// Pays an order of `n` recipients through the Stripe fake and waits for its split.
async fn paid_order(stack: &Stack, shop: &GiftShop, n: usize) -> Value {
    let order = shop.order_for(stack, recipients(n, &shop.vendor)).await;
    let event = stack.stripe.succeed_payment(order["payment_intent_id"].as_str().unwrap()).unwrap();
    shop.deliver(stack, event.to_string().as_bytes(), &shop.webhook_secret, now()).await.assert_status(200);
    shop.wait_split(stack, order["id"].as_str().unwrap()).await
}

fn current_month() -> String {
    let today = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}", today.year(), u8::from(today.month()))
}

async fn statement(stack: &Stack, vendor: &str, cycle: &str) -> Value {
    let reply =
        stack.call(Method::GET, &format!("/vendors/{vendor}/statements/{cycle}")).token(&stack.admin()).send().await;
    reply.assert_status(200);
    reply.json
}

#[tokio::test]
async fn a_cycle_closes_into_one_statement_and_one_xero_invoice_that_reconciles() {
    let stack = Stack::start().await;
    let shop = gift_shop(&stack, "ledger-co").await;
    let vendor = shop.vendor.clone();
    connect_xero(&stack).await;

    // Terms are the platform's: a vendor's owner cannot set them, and nonsense is a 422.
    let terms = json!({ "cycle": "monthly", "fee_basis_points": 250, "fee_per_unit_minor": 75 });
    let path = format!("/vendors/{vendor}/payout-terms");
    stack.call(Method::PUT, &path).token(&shop.owner).json(&terms).send().await.assert_status(403);
    let bad = stack
        .call(Method::PUT, &path)
        .token(&stack.admin())
        .json(&json!({ "cycle": "monthly", "fee_basis_points": 9000 }))
        .send()
        .await;
    bad.assert_status(422);
    stack.call(Method::PUT, &path).token(&stack.admin()).json(&terms).send().await.assert_status(200);
    let read = stack.call(Method::GET, &path).token(&shop.owner).send().await;
    assert_eq!(read.json, terms);

    // Three paid orders, one of them partly refunded.
    let first = paid_order(&stack, &shop, 3).await;
    let second = paid_order(&stack, &shop, 2).await;
    paid_order(&stack, &shop, 1).await;
    let refund = stack
        .call(Method::POST, &format!("/vendors/{vendor}/orders/{}/refunds", first["id"].as_str().unwrap()))
        .token(&shop.owner)
        .json(&json!({ "unit_numbers": [2] }))
        .send()
        .await;
    refund.assert_status(201);
    let refund = stack
        .call(Method::POST, &format!("/vendors/{vendor}/orders/{}/refunds", second["id"].as_str().unwrap()))
        .token(&shop.owner)
        .json(&json!({ "unit_numbers": [1] }))
        .send()
        .await;
    refund.assert_status(201);

    // The month is not over: closing it now is refused, and nothing is written.
    let cycle = current_month();
    let early = stack
        .call(Method::POST, &format!("/vendors/{vendor}/statements"))
        .token(&stack.admin())
        .json(&json!({ "cycle_id": cycle }))
        .send()
        .await;
    early.assert_status(409);
    assert!(early.json["detail"].as_str().unwrap().contains("not over"), "{}", early.json);
    let listed = stack.call(Method::GET, &format!("/vendors/{vendor}/statements")).token(&shop.owner).send().await;
    assert_eq!(listed.json["items"], json!([]));

    // Xero is rate-limited once, then loses an answer mid-run, then fails four times: the
    // client's four tries run out and the job itself is retried by its queue.
    stack.xero.fail_next(1, 429);
    stack.xero.fail_next_after_apply(1, 502);
    stack.xero.fail_next(4, 503);

    // Closed as the schedule would once the month is over, twice and concurrently.
    let scope = bestow::tenancy::guard::job_scope(&vendor, "test").unwrap();
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(40);
    let (a, b) = tokio::join!(
        bestow::billing::service::close_cycle(&stack.app, &scope, &cycle, later),
        bestow::billing::service::close_cycle(&stack.app, &scope, &cycle, later)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "closing a cycle twice gives one statement");

    // The statement adds up to the ledger and to Stripe's records, to the minor unit.
    let cycle_bounds =
        bestow::billing::model::Cycle::parse(bestow::billing::model::CycleKind::Monthly, &cycle, "UTC").unwrap();
    let entries = bestow::ledger::repo::LedgerRepo::new(&stack.app.table, &scope)
        .entries_between(cycle_bounds.start, cycle_bounds.end)
        .await
        .unwrap();
    let ledger = bestow::ledger::model::totals(&entries).unwrap();
    let eur = a.currencies.iter().find(|c| c.currency == "EUR").unwrap();
    let paid: i64 = stack
        .stripe
        .payment_intents()
        .iter()
        .filter(|pi| pi["status"] == "succeeded")
        .map(|pi| pi["amount"].as_i64().unwrap())
        .sum();
    let refunded: i64 = stack.stripe.refunds().iter().map(|r| r["amount"].as_i64().unwrap()).sum();
    assert_eq!((eur.orders, eur.units, eur.refunds), (3, 6, 2));
    assert_eq!(eur.orders_minor, paid);
    assert_eq!(eur.refunds_minor, -refunded);
    assert_eq!(eur.orders_minor, ledger["EUR"].orders_minor);
    assert_eq!(eur.fees_minor, ledger["EUR"].fees_minor);
    let share: i64 =
        [first["totals"]["total_minor"].as_i64().unwrap(), second["totals"]["total_minor"].as_i64().unwrap()]
            .into_iter()
            .chain(std::iter::once(
                paid - first["totals"]["total_minor"].as_i64().unwrap()
                    - second["totals"]["total_minor"].as_i64().unwrap(),
            ))
            .map(|total| (total * 250 + 5_000) / 10_000)
            .sum();
    assert_eq!(eur.percentage_fees_minor, -share);
    assert_eq!(eur.per_unit_fees_minor, -6 * 75);
    assert_eq!(eur.net_payable_minor, paid - refunded - share - 6 * 75);
    assert_eq!(ledger["EUR"].net_minor, eur.net_payable_minor, "fees were charged into the ledger once");
    assert_eq!(entries.iter().filter(|e| e.kind == bestow::ledger::model::EntryKind::PlatformFee).count(), 6);

    // JSON and PDF under the vendor's prefix, downloadable.
    let view = statement(&stack, &vendor, &cycle).await;
    assert!(view["statement"]["json_key"].as_str().unwrap().starts_with(&format!("vendors/{vendor}/statements/")));
    let json_doc: Value = reqwest::get(view["json_url"].as_str().unwrap()).await.unwrap().json().await.unwrap();
    assert_eq!(json_doc["currencies"][0]["net_payable_minor"], eur.net_payable_minor);
    assert_eq!(json_doc["entries"].as_array().unwrap().len(), entries.len());
    let pdf = reqwest::get(view["pdf_url"].as_str().unwrap()).await.unwrap().bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    // One Xero invoice, a line per fee type, the statement attached; despite the 429, the lost
    // answer and the failed run.
    let created = eventually(60, "the Xero invoice", async || {
        let view = statement(&stack, &vendor, &cycle).await;
        let invoice = &view["statement"]["invoices"][0];
        (invoice["state"] == "created" && invoice["attached"] == true).then_some(view)
    })
    .await;
    let invoices = stack.xero.invoices();
    assert_eq!(invoices.len(), 1, "{invoices:#?}");
    let invoice = &invoices[0];
    assert_eq!(created["statement"]["invoices"][0]["invoice_id"], invoice["InvoiceID"]);
    assert_eq!(invoice["Type"], "ACCREC");
    assert_eq!(invoice["CurrencyCode"], "EUR");
    assert_eq!(invoice["LineItems"].as_array().unwrap().len(), 2);
    let total = bestow::integrations::xero::client::minor(invoice["Total"].as_f64().unwrap(), "EUR");
    assert_eq!(total, -eur.fees_minor, "the invoice is the cycle's fees");
    let attachments = stack.xero.attachments(invoice["InvoiceID"].as_str().unwrap());
    assert_eq!(attachments.len(), 1);
    assert!(attachments[0].2.starts_with(b"%PDF-"));
    let creates: Vec<_> =
        stack.xero.requests().into_iter().filter(|r| r.path.ends_with("/Invoices") && r.method != "GET").collect();
    assert_eq!(creates.len(), 7, "a 429, a lost answer, 503s over two runs, then the replay: {creates:?}");
    assert!(creates.windows(2).all(|w| w[0].idempotency_key == w[1].idempotency_key && w[0].idempotency_key.is_some()));

    // Closing again (now through the API) changes nothing, in the statement or in Xero.
    let again = stack
        .call(Method::POST, &format!("/vendors/{vendor}/statements"))
        .token(&stack.admin())
        .json(&json!({ "cycle_id": cycle }))
        .send()
        .await;
    again.assert_status(201);
    assert_eq!(again.json["statement"]["closed_at"], json!(a.closed_at));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(stack.xero.invoices().len(), 1);

    // The payout: recorded once, and the fee invoice reconciles in Xero.
    let payouts = format!("/vendors/{vendor}/statements/{cycle}/payouts");
    let body = json!({ "currency": "EUR", "reference": "SEPA-2026-0042" });
    let paid_out = stack.call(Method::POST, &payouts).token(&stack.admin()).json(&body).send().await;
    paid_out.assert_status(201);
    // A retried request is answered again; another payout of the same cycle is a conflict.
    stack.call(Method::POST, &payouts).token(&stack.admin()).json(&body).send().await.assert_status(200);
    let other = json!({ "currency": "EUR", "reference": "SEPA-2026-0043" });
    stack.call(Method::POST, &payouts).token(&stack.admin()).json(&other).send().await.assert_status(409);
    stack.call(Method::POST, &payouts).token(&shop.owner).json(&body).send().await.assert_status(403);
    let reconciled = eventually(60, "the payment in Xero", async || {
        let view = statement(&stack, &vendor, &cycle).await;
        (view["statement"]["invoices"][0]["payment_recorded"] == true).then_some(view)
    })
    .await;
    assert_eq!(reconciled["statement"]["invoices"][0]["xero_status"], "PAID");
    assert_eq!(reconciled["statement"]["invoices"][0]["amount_due_minor"], 0);
    assert_eq!(stack.xero.payments().len(), 1);
    let payout_entries = bestow::ledger::repo::LedgerRepo::new(&stack.app.table, &scope)
        .entries_between(time::macros::datetime!(2000-01-01 0:00 UTC), later)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == bestow::ledger::model::EntryKind::Payout)
        .collect::<Vec<_>>();
    assert_eq!(payout_entries.len(), 1);
    assert_eq!(payout_entries[0].amount_minor, -eur.net_payable_minor);

    // Xero's webhook: a wrong signature is 401; a signed one updates the invoice's state.
    let invoice_id = invoice["InvoiceID"].as_str().unwrap();
    stack.xero.set_invoice_status(invoice_id, "VOIDED");
    let webhook = format!("{}/webhooks/xero", stack.base);
    assert_eq!(stack.xero.send_invoice_event(&webhook, "wrong-key", invoice_id).await, Ok(401));
    assert_eq!(stack.xero.send_invoice_event(&webhook, bestow_tests::XERO_WEBHOOK_KEY, invoice_id).await, Ok(200));
    eventually(60, "the voided state", async || {
        let view = statement(&stack, &vendor, &cycle).await;
        (view["statement"]["invoices"][0]["xero_status"] == "VOIDED").then_some(())
    })
    .await;

    // The next cycle starts where this one ended; one the statements cover already, or a
    // malformed id, is 422 and writes nothing.
    let next_id = {
        let first = cycle_bounds.end;
        format!("{:04}-{:02}", first.year(), u8::from(first.month()))
    };
    let next = bestow::billing::service::close_cycle(&stack.app, &scope, &next_id, later + time::Duration::days(40))
        .await
        .unwrap();
    assert_eq!(next.period_start, a.period_end);
    for bad in ["2026-011", "last-month"] {
        let refused = stack
            .call(Method::POST, &format!("/vendors/{vendor}/statements"))
            .token(&stack.admin())
            .json(&json!({ "cycle_id": bad }))
            .send()
            .await;
        assert_eq!(refused.assert_problem(422), "https://bestow.dev/problems/validation-failed", "{}", refused.text);
    }

    // The platform's view lists it with its invoice state; vendors cannot read it.
    let all = stack.call(Method::GET, "/statements").token(&stack.admin()).send().await;
    all.assert_status(200);
    let mine: Vec<&Value> =
        all.json["items"].as_array().unwrap().iter().filter(|s| s["owner_vendor"] == vendor).collect();
    assert_eq!(mine.len(), 2);
    let first = mine.iter().find(|s| s["cycle_id"] == cycle.as_str()).unwrap();
    assert_eq!(first["invoices"][0]["xero_status"], "VOIDED");
    stack.call(Method::GET, "/statements").token(&shop.owner).send().await.assert_status(403);
    let listed = stack.call(Method::GET, &format!("/vendors/{vendor}/statements")).token(&shop.owner).send().await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 2);
    assert_eq!(listed.json["items"][0]["cycle_id"], next_id.as_str(), "latest first");
}

#[tokio::test]
async fn two_workers_refreshing_at_once_make_one_refresh_call_and_both_proceed() {
    let stack = Stack::start().await;
    connect_xero(&stack).await;
    // Time passes: the access token is about to expire.
    let table = &stack.app.table;
    let repo = bestow::xero::repo::XeroRepo::new(table);
    let mut current = repo.connection().await.unwrap().unwrap();
    current.value.access_expires_at = time::OffsetDateTime::now_utc().unix_timestamp() - 1;
    repo.save_connection(&current.value, Some(current.version)).await.unwrap();
    let before = stack.xero.refresh_calls();

    let (a, b) = tokio::join!(
        bestow::xero::service::access_token(&stack.app, None),
        bestow::xero::service::access_token(&stack.app, None)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(stack.xero.refresh_calls() - before, 1, "one refresh call reached Xero");
    assert_eq!(a.2, b.2, "both use the same generation");
    assert!(stack.xero.access_token_valid(a.0.expose()) && stack.xero.access_token_valid(b.0.expose()));

    // The new pair was stored before use: the connection names it, and its refresh token is
    // the one Xero will accept next.
    let after = repo.connection().await.unwrap().unwrap().value;
    assert_eq!(after.refreshes, 1);
    assert!(after.lease_owner.is_none() && after.lease_until_ms.is_none());
    let view = stack.call(Method::GET, "/xero").token(&stack.admin()).send().await;
    assert_eq!(view.json["refreshes"], 1);
    assert!(!view.text.contains(a.0.expose()), "no token in the view");

    // Someone refreshes the pair elsewhere (another deployment holding a copy), and Xero's grace
    // period for the used refresh token is over: Xero refuses it, and the connection is marked
    // for reconnecting, not retried.
    stack.xero.set_refresh_grace(std::time::Duration::ZERO);
    let (latest, _) = stack.app.secrets.platform_latest::<bestow::integrations::xero::XeroTokens>().await.unwrap();
    let xero_app = stack.app.secrets.platform::<bestow::integrations::xero::XeroApp>().await.unwrap();
    bestow::integrations::xero::client::refresh(
        &stack.app.http(),
        &stack.app.config.xero,
        &xero_app,
        &latest.refresh_token,
    )
    .await
    .unwrap();
    let mut current = repo.connection().await.unwrap().unwrap();
    current.value.access_expires_at = 0;
    repo.save_connection(&current.value, Some(current.version)).await.unwrap();
    let refused = bestow::xero::service::access_token(&stack.app, None).await;
    assert!(matches!(refused, Err(bestow::xero::service::AccessError::NeedsReconnect)), "{refused:?}");
    let view = stack.call(Method::GET, "/xero").token(&stack.admin()).send().await;
    assert_eq!(view.json["status"], "needs_reconnect");
}
