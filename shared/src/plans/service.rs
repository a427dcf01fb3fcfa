//! Plan use cases: offering plans, subscribing through Stripe Checkout, following Stripe
//! Billing's webhooks, and the checks where limited resources are created.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::dto::*;
use super::model::*;
use super::repo::{self, PlanRepo};
use crate::app::App;
use crate::error::{ApiError, FieldError};
use crate::integrations::secrets::{PlatformSecret, Redacted};
use crate::integrations::stripe::{NewSubscriptionCheckout, StripeClient, StripeError};
use crate::ledger::model::{EntryKind, LedgerEntry};
use crate::store::StoreError;
use crate::tenancy::TenantScope;
use crate::vendors::repo::VendorRepo;
use crate::vendors::service::now_rfc3339;

/// The platform's own Stripe account (`<prefix>/platform/stripe-billing`): its key and the
/// signing secret of its webhook endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BillingAccount {
    pub secret_key: Redacted,
    pub webhook_secret: Redacted,
}

impl PlatformSecret for BillingAccount {
    const NAME: &'static str = "stripe-billing";
}

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn platform_stripe(app: &App) -> Result<StripeClient, ApiError> {
    let account = app.secrets.platform::<BillingAccount>().await?;
    Ok(StripeClient::new(app.http(), &app.config.stripe_api_base, account.secret_key))
}

fn stripe_failure(err: StripeError) -> ApiError {
    match err {
        StripeError::Rejected { message, .. } => ApiError::Upstream(format!("Stripe refused: {message}")),
        other => ApiError::Upstream(other.to_string()),
    }
}

pub fn list_plans(app: &App) -> PlanList {
    PlanList {
        items: PLANS
            .iter()
            .map(|p| PlanOffer {
                id: p.id.to_owned(),
                name: p.name.to_owned(),
                limits: p.limits,
                available: app.config.plan_prices.contains_key(p.id),
            })
            .collect(),
    }
}

async fn state(app: &App, scope: &TenantScope) -> Result<Option<crate::store::Versioned<PlanState>>, StoreError> {
    VendorRepo::new(&app.table, scope).config::<PlanState>().await
}

pub async fn vendor_plan(app: &App, scope: &TenantScope) -> Result<VendorPlanView, ApiError> {
    let state = state(app, scope).await?.map(|s| s.value);
    let plans = PlanRepo::new(&app.table, scope);
    let month = usage_month(time::OffsetDateTime::now_utc());
    let (storefronts, products, recipients) =
        tokio::try_join!(plans.storefronts(), plans.products(), plans.recipients_in(&month))?;
    Ok(VendorPlanView {
        entitlement: entitlement(state.as_ref(), now_epoch()),
        state,
        usage: Usage { storefronts, products, recipients_this_month: recipients, month },
    })
}

/// Starts a subscription: the vendor's customer on the platform's account (created once), then
/// a Checkout Session in subscription mode for the plan's price.
pub async fn start_checkout(
    app: &App,
    scope: &TenantScope,
    req: PlanCheckoutRequest,
) -> Result<PlanCheckoutStarted, ApiError> {
    let mut errors = Vec::new();
    let price = match (plan(&req.plan_id), app.config.plan_prices.get(&req.plan_id)) {
        (Some(_), Some(price)) => Some(price.clone()),
        (Some(_), None) => {
            errors.push(FieldError::new("/plan_id", format!("{} is not offered yet", req.plan_id)));
            None
        }
        (None, _) => {
            let known = PLANS.iter().map(|p| p.id).collect::<Vec<_>>().join(", ");
            errors.push(FieldError::new("/plan_id", format!("{} is not a plan ({known})", req.plan_id)));
            None
        }
    };
    for (pointer, url) in [("/success_url", &req.success_url), ("/cancel_url", &req.cancel_url)] {
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2_000 {
            errors.push(FieldError::new(pointer, "an http(s) URL of at most 2000 characters"));
        }
    }
    ApiError::reject_if_any(errors)?;
    let price = price.unwrap_or_default();
    let vendors = VendorRepo::new(&app.table, scope);
    let vendor = vendors
        .profile()
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("vendor {} not found", scope.vendor_id())))?
        .value;
    let current = state(app, scope).await?;
    if let Some(current) = &current
        && entitlement(Some(&current.value), now_epoch()).standing == "active"
    {
        return Err(ApiError::Conflict(format!(
            "the vendor already has an active {} subscription",
            current.value.plan_id.as_deref().unwrap_or("plan")
        )));
    }
    let stripe = platform_stripe(app).await?;
    let stage = &app.config.stage;
    let metadata = BTreeMap::from([("bestow_vendor".to_owned(), scope.vendor_id().to_string())]);
    let customer_id = match &current {
        Some(current) => current.value.customer_id.clone(),
        None => {
            // One customer per vendor, however often this runs: the key is the vendor's.
            let key = format!("bestow-{stage}-customer-{}", scope.vendor_id());
            let customer = stripe
                .create_customer(&vendor.legal_name.unwrap_or(vendor.name), &vendor.contact_email, &metadata, &key)
                .await
                .map_err(stripe_failure)?;
            PlanRepo::new(&app.table, scope).record_customer(&customer.id).await?;
            let state = PlanState {
                customer_id: customer.id.clone(),
                plan_id: None,
                subscription_id: None,
                subscription_created: None,
                status: None,
                current_period_end: None,
                cancel_at_period_end: false,
                past_due_since: None,
                updated_at: now_rfc3339(),
            };
            match vendors.put_config(&state, None).await {
                Ok(_) | Err(StoreError::ConditionFailed) => {}
                Err(other) => return Err(other.into()),
            }
            customer.id
        }
    };
    let session = stripe
        .create_subscription_checkout(
            &NewSubscriptionCheckout {
                customer: &customer_id,
                price: &price,
                success_url: &req.success_url,
                cancel_url: &req.cancel_url,
                client_reference_id: scope.vendor_id().as_str(),
                metadata: &metadata,
            },
            &format!("bestow-{stage}-plan-checkout-{}-{}", scope.vendor_id(), crate::store::ids::new_id()),
        )
        .await
        .map_err(stripe_failure)?;
    let checkout_url =
        session.url.ok_or_else(|| ApiError::Upstream("Stripe returned a Checkout Session without a URL".into()))?;
    Ok(PlanCheckoutStarted { session_id: session.id, checkout_url })
}

// ---------------------------------------------------------------- webhooks

#[derive(Deserialize)]
struct BillingEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: BillingEventData,
}

#[derive(Deserialize)]
struct BillingEventData {
    object: serde_json::Value,
}

/// The platform account's webhook. Signature first; then, for subscription, invoice and
/// checkout events, the subscription is read from Stripe as it is *now* and applied: events
/// that arrive late, out of order or twice cannot leave a wrong state. `invoice.paid` also
/// records the plan charge in the vendor's ledger (once per invoice).
pub async fn receive_webhook(
    app: &App,
    body: &[u8],
    signature: Option<&str>,
) -> Result<BillingWebhookOutcome, ApiError> {
    let account = app.secrets.platform::<BillingAccount>().await?;
    crate::integrations::stripe::verify_webhook(body, signature, account.webhook_secret.expose(), now_epoch())
        .map_err(|e| ApiError::BadRequest(format!("the Stripe-Signature does not verify: {e}")))?;
    let event: BillingEvent =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("not a Stripe event: {e}")))?;
    if repo::event_seen(&app.table, &event.id).await? {
        return Ok(BillingWebhookOutcome { event_id: event.id, outcome: "already received".into(), duplicate: true });
    }
    let object = &event.data.object;
    let text = |field: &str| object.get(field).and_then(|v| v.as_str()).map(str::to_owned);
    let (subscription, customer) = match event.event_type.as_str() {
        t if t.starts_with("customer.subscription.") => (text("id"), text("customer")),
        "invoice.paid" | "invoice.payment_failed" | "invoice.payment_succeeded" | "checkout.session.completed" => {
            (text("subscription"), text("customer"))
        }
        _ => (None, None),
    };
    let outcome = match (subscription, customer) {
        (Some(subscription), Some(customer)) => match repo::customer_vendor(&app.table, &customer).await? {
            Some(vendor) => {
                let scope = crate::tenancy::guard::job_scope(&vendor, "stripe-billing").map_err(ApiError::internal)?;
                if event.event_type == "invoice.paid" {
                    record_charge(app, &scope, object).await?;
                }
                sync_subscription(app, &scope, &subscription).await?
            }
            None => format!("customer {customer} is no vendor's"),
        },
        _ => format!("{} is not followed", event.event_type),
    };
    repo::record_event(&app.table, &event.id, &event.event_type, &outcome).await?;
    Ok(BillingWebhookOutcome { event_id: event.id, outcome, duplicate: false })
}

/// Reads the subscription from Stripe and applies it to the vendor's plan state.
async fn sync_subscription(app: &App, scope: &TenantScope, subscription_id: &str) -> Result<String, ApiError> {
    let stripe = platform_stripe(app).await?;
    let subscription = stripe.subscription(subscription_id).await.map_err(stripe_failure)?;
    let plan_id = subscription.price_id().and_then(|price| {
        app.config.plan_prices.iter().find(|(_, p)| p.as_str() == price).map(|(plan, _)| plan.clone())
    });
    let vendors = VendorRepo::new(&app.table, scope);
    for _ in 0..5 {
        let current =
            state(app, scope).await?.ok_or_else(|| ApiError::internal("a billing customer has no plan state"))?;
        let Some(mut next) = apply_subscription(&current.value, &subscription, plan_id.as_deref(), now_epoch()) else {
            return Ok(format!("{subscription_id} is older than the vendor's subscription"));
        };
        if next == current.value {
            return Ok(format!("{subscription_id} unchanged ({})", subscription.status));
        }
        next.updated_at = now_rfc3339();
        match vendors.put_config(&next, Some(current.version)).await {
            Ok(_) => return Ok(format!("{subscription_id} is {}", subscription.status)),
            Err(StoreError::ConditionFailed) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Conflict("the plan state kept changing; Stripe will deliver the event again".into()))
}

/// The plan charge of a paid invoice, in the vendor's ledger once.
async fn record_charge(app: &App, scope: &TenantScope, invoice: &serde_json::Value) -> Result<(), ApiError> {
    let (Some(id), Some(amount), Some(currency)) = (
        invoice.get("id").and_then(|v| v.as_str()),
        invoice.get("amount_paid").and_then(|v| v.as_i64()),
        invoice.get("currency").and_then(|v| v.as_str()),
    ) else {
        return Err(ApiError::BadRequest("the invoice lacks id, amount_paid or currency".into()));
    };
    if amount <= 0 {
        return Ok(());
    }
    let entry = LedgerEntry::new(
        EntryKind::SubscriptionCharge,
        amount,
        &currency.to_ascii_uppercase(),
        id,
        None,
        &now_rfc3339(),
        format!("plan invoice {id}"),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let writes = crate::ledger::repo::LedgerRepo::new(&app.table, scope).transact_record(&entry)?;
    match app.table.transact(writes.into()).await {
        // Recorded before (a redelivery whose receipt was not written yet).
        Ok(()) | Err(StoreError::TransactionConditionFailed { .. }) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

// ---------------------------------------------------------------- limits

async fn limits(app: &App, scope: &TenantScope) -> Result<Entitlement, ApiError> {
    Ok(entitlement(state(app, scope).await?.as_ref().map(|s| &s.value), now_epoch()))
}

/// Before a checkout: a lapsed plan takes no orders (402), and the month's recipients stay
/// within the plan (403). Nothing is written by a refusal.
pub async fn check_order(app: &App, scope: &TenantScope, recipients: u32) -> Result<(), ApiError> {
    let entitlement = limits(app, scope).await?;
    if !entitlement.can_take_orders {
        return Err(ApiError::PaymentRequired(
            "the vendor's plan has lapsed (payment failed past the grace period, or the subscription ended): \
             new orders are paused until it is paid; nothing else is affected"
                .into(),
        ));
    }
    if let Some(limits) = entitlement.limits {
        let month = usage_month(time::OffsetDateTime::now_utc());
        let used = PlanRepo::new(&app.table, scope).recipients_in(&month).await?;
        if used + u64::from(recipients) > u64::from(limits.recipients_per_month) {
            return Err(ApiError::PlanLimit(format!(
                "the plan allows {} recipients a month; {used} are used in {month} and this order has {recipients}",
                limits.recipients_per_month
            )));
        }
    }
    Ok(())
}

/// Before a storefront is created: the plan's number of storefronts.
pub async fn check_storefronts(app: &App, scope: &TenantScope) -> Result<(), ApiError> {
    check_count(app, scope, Counted::Storefronts).await
}

/// Before a product is created: the plan's number of products.
pub async fn check_products(app: &App, scope: &TenantScope) -> Result<(), ApiError> {
    check_count(app, scope, Counted::Products).await
}

enum Counted {
    Storefronts,
    Products,
}

/// Refuses when the vendor has as many as its plan allows already; counts only under a plan.
async fn check_count(app: &App, scope: &TenantScope, what: Counted) -> Result<(), ApiError> {
    let Some(limits) = limits(app, scope).await?.limits else {
        return Ok(());
    };
    let repo = PlanRepo::new(&app.table, scope);
    let (name, limit, used) = match what {
        Counted::Storefronts => ("storefronts", limits.storefronts, repo.storefronts().await?),
        Counted::Products => ("products", limits.products, repo.products().await?),
    };
    if used >= u64::from(limit) {
        return Err(ApiError::PlanLimit(format!("the plan allows {limit} {name} and the vendor has {used}")));
    }
    Ok(())
}
