//! `bestow-local`: the local stack's command line. `infra/bestow` starts the emulator and
//! calls this; run it directly only with `AWS_ENDPOINT_URL` pointing at a moto server.
//!
//!   bestow-local up [--port 3000]     provision, seed, serve the API until Ctrl-C
//!   bestow-local token <role> [vendor] mint a dev token for the running stack
//!   bestow-local openapi              print the OpenAPI document

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bestow_infra::devtoken::{DevKeys, DevUser};
use bestow_infra::gateway::Gateway;
use bestow_infra::stack::{LocalStack, StackOptions};
use bestow_infra::template::workspace_root;
use bestow_infra::{InfraError, demo, seed};

const STACK_PREFIX: &str = "bestow-local";
const TOKEN_TTL_SECONDS: i64 = 12 * 3600;
/// The demo vendor's Stripe keys, as `seed::seed_demo` stores them.
const DEMO_STRIPE_SECRET_KEY: &str = "sk_test_localdemo000000";
const DEMO_WEBHOOK_SECRET: &str = "whsec_localdemo000000";
/// The local Shopify app and the demo shop it can be installed on.
const DEMO_SHOPIFY_API_KEY: &str = "bestow-local-app";
const DEMO_SHOPIFY_API_SECRET: &str = "shpss_localdemo_app_secret";
const DEMO_SHOP: &str = "bestow-demo.myshopify.com";
const DEMO_BILLING_SECRET_KEY: &str = "sk_test_localplatform000000";
const DEMO_BILLING_WEBHOOK_SECRET: &str = "whsec_localplatform000000";
/// The plans' prices on the local platform account (plan, price id, monthly EUR cents).
const DEMO_PLAN_PRICES: &[(&str, &str, i64)] = &[
    ("starter", "price_local_starter", 4_900),
    ("growth", "price_local_growth", 19_900),
    ("scale", "price_local_scale", 79_900),
];
const DEMO_XERO_CLIENT_ID: &str = "BESTOWLOCALXEROCLIENT";
const DEMO_XERO_CLIENT_SECRET: &str = "xero_localdemo_client_secret";
const DEMO_XERO_WEBHOOK_KEY: &str = "xero_localdemo_webhook_key";

fn key_file() -> PathBuf {
    workspace_root().join(".local").join("dev-jwt-key")
}

async fn up(port: u16) -> Result<(), InfraError> {
    // Stripe, played locally: checkouts create PaymentIntents in it, confirming one (as Stripe.js
    // would) pays it, and its webhooks come back to the API below, signed with the vendor's secret.
    let stripe = bestow_infra::fakes::stripe::StripeFake::start().await?;
    // Shopify, played locally: a demo shop with a small catalogue; installing the app on it
    // (see the banner) mirrors it into the demo vendor's catalogue, and its webhooks come back.
    let shopify =
        bestow_infra::fakes::shopify::ShopifyFake::start(DEMO_SHOPIFY_API_KEY, DEMO_SHOPIFY_API_SECRET).await?;
    shopify.add_shop(DEMO_SHOP, "EUR");
    shopify.seed_catalogue(DEMO_SHOP, 12, 6, 24);
    // Xero, played locally: the platform's organisation; connecting it (see the banner) lets
    // closed payout cycles become invoices there.
    let xero = bestow_infra::fakes::xero::XeroFake::start(DEMO_XERO_CLIENT_ID, DEMO_XERO_CLIENT_SECRET).await?;
    for (plan, price, amount) in DEMO_PLAN_PRICES {
        stripe.add_price(price, *amount, "eur", "month", &format!("Bestow {plan}"));
    }
    let stack = LocalStack::provision(StackOptions {
        prefix: STACK_PREFIX.to_owned(),
        stage: "local".to_owned(),
        secrets_prefix: None,
        // BESTOW_VISIBILITY_SECONDS shortens the queues' visibility timeouts, to watch
        // retries and dead-lettering in seconds rather than minutes.
        visibility_override: std::env::var("BESTOW_VISIBILITY_SECONDS").ok().and_then(|v| v.parse().ok()),
        counter: None,
        stripe_api_base: Some(stripe.base_url().to_owned()),
        shopify: Some(bestow_infra::stack::LocalShopify {
            api_base: shopify.base_url().to_owned(),
            api_key: DEMO_SHOPIFY_API_KEY.to_owned(),
            api_secret: DEMO_SHOPIFY_API_SECRET.to_owned(),
        }),
        xero: Some(bestow_infra::stack::LocalXero {
            base: xero.base_url().to_owned(),
            client_id: DEMO_XERO_CLIENT_ID.to_owned(),
            client_secret: DEMO_XERO_CLIENT_SECRET.to_owned(),
            webhook_key: DEMO_XERO_WEBHOOK_KEY.to_owned(),
        }),
        billing: Some(bestow_infra::stack::LocalBilling {
            secret_key: DEMO_BILLING_SECRET_KEY.to_owned(),
            webhook_secret: DEMO_BILLING_WEBHOOK_SECRET.to_owned(),
            plan_prices: DEMO_PLAN_PRICES
                .iter()
                .map(|(plan, price, _)| format!("{plan}={price}"))
                .collect::<Vec<_>>()
                .join(","),
        }),
        public_base_url: Some(format!("http://127.0.0.1:{port}")),
    })
    .await?;
    let (template, names, app) = (&stack.template, &stack.names, stack.app.clone());
    let keys = DevKeys::random();
    std::fs::create_dir_all(workspace_root().join(".local"))?;
    std::fs::write(key_file(), keys.to_hex())?;
    // The template's CORS origin (the frontend dev server), unless BESTOW_CORS_ORIGIN says otherwise.
    let cors_origin = std::env::var("BESTOW_CORS_ORIGIN")
        .ok()
        .or_else(|| template.parameter_default("CorsAllowOrigin"))
        .unwrap_or_else(|| "*".to_owned());
    let gateway = Arc::new(Gateway::new(app, keys.clone(), bestow::routes::ALL).with_cors_origin(&cors_origin));
    let documents = names.bucket("DocumentsBucket").unwrap_or("bestow-local-documentsbucket").to_owned();
    let seeded = seed::seed_demo(&gateway, &documents).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    stripe.deliver_webhooks(
        &format!("http://127.0.0.1:{port}/webhooks/stripe/"),
        BTreeMap::from([(demo::VENDOR_ID.to_owned(), DEMO_WEBHOOK_SECRET.to_owned())]),
    );
    // The platform's own account: plan checkouts and subscription events come back signed.
    stripe.deliver_platform_webhooks(
        &format!("http://127.0.0.1:{port}/webhooks/stripe-billing"),
        DEMO_BILLING_WEBHOOK_SECRET,
        DEMO_BILLING_SECRET_KEY,
    );
    let pollers = stack.spawn_pollers();
    // The template's schedules (hourly); BESTOW_SCHEDULE_SECONDS runs them more often.
    let schedule_seconds = std::env::var("BESTOW_SCHEDULE_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3600);
    let schedules = stack.spawn_schedules(std::time::Duration::from_secs(schedule_seconds));
    // From here on, every request logs its JSON line, as the functions do in Lambda.
    bestow::telemetry::init();
    let admin =
        keys.issue(&DevUser { sub: demo::PLATFORM_ADMIN, group: "platform_admin", vendor_id: None }, TOKEN_TTL_SECONDS);
    let owner =
        keys.issue(&DevUser { sub: demo::OWNER, group: "owner", vendor_id: Some(demo::VENDOR_ID) }, TOKEN_TTL_SECONDS);
    let stripe_base = stripe.base_url();
    let shopify_base = shopify.base_url();
    let xero_base = xero.base_url();
    println!(
        "\nBestow local stack\n  API        http://127.0.0.1:{port}  ({} routes; OpenAPI at /openapi.json)\n  table      {}\n  buckets    {}\n  queues     {} (workers polling: {})\n  mail       SMTP sink on 127.0.0.1:2525, messages in .local/mail/\n  stripe     local Stripe fake at {stripe_base}\n  webhooks   POST http://127.0.0.1:{port}/webhooks/stripe/<vendor id>  (events for {} arrive by themselves, signed)\n  pay        curl -s -u {DEMO_STRIPE_SECRET_KEY}: -d payment_method=pm_card_visa {stripe_base}/v1/payment_intents/<pi id>/confirm\n             (<pi id>: the order's payment_intent_id; pm_card_chargeDeclined declines)\n  shopify    local Shopify fake at {shopify_base}, shop {DEMO_SHOP} (12 products)\n  install    curl -s -H \"Authorization: Bearer <owner token>\" -d '{{\"shop\":\"{DEMO_SHOP}\"}}' http://127.0.0.1:{port}/vendors/{}/shopify/install\n             then open (or curl -L) its authorize_url: the fake approves and redirects back; GET /vendors/{}/shopify shows the sync\n  xero       local Xero fake at {xero_base}: curl -s -X POST -H \"Authorization: Bearer <admin token>\" http://127.0.0.1:{port}/xero/connect\n             then curl -L its authorize_url (the fake consents); GET /xero shows the organisation\n  plans      POST /vendors/{}/plan/checkout {{\"plan_id\":\"growth\",\"success_url\":…,\"cancel_url\":…}} (owner); GET /vendors/{}/plan\n  payouts    PUT /vendors/{}/payout-terms (admin), then POST /vendors/{}/statements {{\"cycle_id\":\"YYYY-MM\"}} once a month is over\n  demo       vendor {} ({})\n\nPlatform admin token:\n{admin}\n\nVendor owner token ({}):\n{owner}\n\nTry:\n  curl -s -H \"Authorization: Bearer {owner}\" http://127.0.0.1:{port}/vendors/{}/shipping\n\nMore tokens: cargo run -q -p bestow-infra --bin bestow-local -- token <role> [vendor]\nCtrl-C stops the stack.\n",
        bestow::routes::ALL.len(),
        names.table,
        names.buckets.iter().map(|(_, b)| b.as_str()).collect::<Vec<_>>().join(", "),
        names.queues.iter().map(|(_, q)| q.as_str()).collect::<Vec<_>>().join(", "),
        pollers.len(),
        demo::VENDOR_ID,
        demo::VENDOR_ID,
        demo::VENDOR_ID,
        demo::VENDOR_ID,
        demo::VENDOR_ID,
        demo::VENDOR_ID,
        demo::VENDOR_ID,
        demo::VENDOR_ID,
        if seeded { "seeded now" } else { "already there" },
        demo::VENDOR_ID,
        demo::VENDOR_ID,
    );
    tokio::select! {
        served = gateway.serve(listener) => served?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    pollers.iter().chain(&schedules).for_each(|task| task.abort());
    Ok(())
}

fn token(role: &str, vendor: Option<&str>) -> Result<(), InfraError> {
    let hex = std::fs::read_to_string(key_file())
        .map_err(|_| InfraError::Other("no running stack: start it with infra/bestow up".into()))?;
    let keys = DevKeys::from_hex(&hex)
        .ok_or_else(|| InfraError::Other("the dev key file is damaged; restart the stack".into()))?;
    let sub = format!("dev-{role}");
    let vendor = vendor.or((role != "platform_admin").then_some(demo::VENDOR_ID));
    println!("{}", keys.issue(&DevUser { sub: &sub, group: role, vendor_id: vendor }, TOKEN_TTL_SECONDS));
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["up"] => up(3000).await,
        ["up", "--port", port] => match port.parse() {
            Ok(port) => up(port).await,
            Err(_) => Err(InfraError::Other(format!("not a port: {port}"))),
        },
        ["token", role] => token(role, None),
        ["token", role, vendor] => token(role, Some(vendor)),
        ["openapi"] => {
            print!("{}", bestow::openapi::to_json(bestow::routes::ALL));
            Ok(())
        }
        _ => Err(InfraError::Other("usage: bestow-local up [--port N] | token <role> [vendor] | openapi".into())),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bestow-local: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
