//! Order use cases: checkout (totals, stock, the Stripe PaymentIntent) and the reads.

use std::collections::{BTreeMap, HashMap};

use super::dto::{CheckoutItem, CheckoutRequest, CheckoutResponse, OrderList, UnitList};
use super::model::{
    MAX_LINES, MAX_ORDER_TOTAL, MAX_QUANTITY, MAX_RECIPIENTS, MAX_SWAP_CHOICES, MIN_ORDER_TOTAL, Order, OrderLine,
    OrderStatus, Recipient, SplitProgress, bundle_minor, bundle_weight_grams, check_recipient, totals,
};
use super::repo::OrderRepo;
use crate::app::App;
use crate::audit::model::AuditEntry;
use crate::audit::repo::AuditLog;
use crate::catalog::model::{InventoryPolicy, variant_labels};
use crate::catalog::repo::CatalogRepo;
use crate::error::{ApiError, FieldError};
use crate::integrations::stripe::{NewPaymentIntent, StripeClient, StripeError};
use crate::store::Cursor;
use crate::storefronts::model::{StorefrontStatus, is_visible, storefront_price};
use crate::storefronts::repo::StorefrontRepo;
use crate::tenancy::{Role, TenantScope};
use crate::vendors::model::{ShippingRules, StripeCredentials, StripeSettings};
use crate::vendors::repo::VendorRepo;
use crate::vendors::service::now_rfc3339;

const DEFAULT_EXPIRY_DAYS: u32 = 30;
const DEFAULT_REMINDER_DAYS: u32 = 7;

/// The columns of a recipients CSV, in order.
pub const RECIPIENT_CSV_HEADER: [&str; 10] = [
    "name",
    "email",
    "shipping_method_id",
    "gift_message",
    "line1",
    "line2",
    "city",
    "postal_code",
    "region",
    "country",
];

pub async fn checkout(
    app: &App,
    scope: &TenantScope,
    storefront_id: &str,
    req: CheckoutRequest,
) -> Result<CheckoutResponse, ApiError> {
    let recipients = recipients_of(&req)?;
    let (expires_after_days, remind_after_days) = check_request(&req, &recipients)?;

    let storefront = StorefrontRepo::new(&app.table, scope)
        .storefront(storefront_id)
        .await?
        .filter(|s| s.value.status == StorefrontStatus::Active)
        .ok_or_else(|| ApiError::NotFound(format!("storefront {storefront_id} not found")))?
        .value;
    let lines = price_lines(app, scope, &storefront.id, &storefront.currency, &req.items, recipients.len()).await?;
    // The vendor's plan: a lapsed one takes no orders, and the month's recipients are limited.
    crate::plans::service::check_order(app, scope, recipients.len() as u32).await?;

    let vendor = VendorRepo::new(&app.table, scope);
    let rules = vendor
        .config::<ShippingRules>()
        .await?
        .ok_or_else(|| ApiError::Conflict("the vendor has no shipping rules yet, so nothing can be shipped".into()))?
        .value;
    let shipping = shipping_amounts(&rules, &storefront.currency, &lines, &recipients)?;
    let totals = totals(&lines, &shipping, rules.tax_rate_basis_points);
    if !(MIN_ORDER_TOTAL..=MAX_ORDER_TOTAL).contains(&totals.total_minor) {
        return Err(ApiError::validation(vec![FieldError::new(
            "",
            format!(
                "one payment is {MIN_ORDER_TOTAL} to {MAX_ORDER_TOTAL} minor units; this order is {}",
                totals.total_minor
            ),
        )]));
    }

    let stripe = stripe_client(app, scope).await?;
    let order_id = crate::store::ids::new_id();
    let metadata = BTreeMap::from([
        ("bestow_vendor".to_owned(), scope.vendor_id().to_string()),
        ("bestow_order".to_owned(), order_id.clone()),
    ]);
    let description = format!("Gift order {order_id} for {} recipients", recipients.len());
    let intent = stripe
        .create_payment_intent(
            &NewPaymentIntent {
                amount_minor: totals.total_minor,
                currency: &storefront.currency,
                description: &description,
                metadata: &metadata,
            },
            // Derived from the order: a retried call returns the same PaymentIntent.
            &format!("bestow-order-{}-{order_id}", scope.vendor_id()),
        )
        .await
        .map_err(stripe_failure)?;
    let client_secret = intent
        .client_secret
        .ok_or_else(|| ApiError::Upstream("Stripe returned a PaymentIntent without a client secret".into()))?;

    let now = now_rfc3339();
    let order = Order {
        id: order_id.clone(),
        storefront_id: storefront.id.clone(),
        buyer_id: scope.actor().user_id.clone(),
        buyer_email: req.buyer_email.clone(),
        sender_name: req.sender_name.trim().to_owned(),
        status: OrderStatus::AwaitingPayment,
        currency: storefront.currency.clone(),
        lines,
        recipient_count: recipients.len() as u32,
        totals,
        tax_rate_basis_points: rules.tax_rate_basis_points,
        payment_intent_id: intent.id,
        split: SplitProgress::default(),
        refunded_minor: 0,
        expires_after_days,
        remind_after_days,
        created_at: now.clone(),
        updated_at: now,
    };
    let repo = OrderRepo::new(&app.table, scope);
    // Recipients first: invisible until the order that names them exists.
    repo.put_recipients(&order.id, &recipients, &shipping).await?;
    let mut writes = repo.create_order(&order)?;
    let summary = format!("{} recipients, {} {}", order.recipient_count, order.totals.total_minor, order.currency);
    let audit = AuditEntry::new(scope, "order.created", format!("orders/{}", order.id)).versions(None, Some(1));
    writes.push(AuditLog::new(&app.table, scope).transact_put(&audit.summary(summary))?);
    app.table.transact(writes).await?;
    Ok(CheckoutResponse { order: order.into(), client_secret })
}

/// The vendor's Stripe client: its secret key from Secrets Manager (through the cache).
pub async fn stripe_client(app: &App, scope: &TenantScope) -> Result<StripeClient, ApiError> {
    let (_, credentials) = stripe_credentials(app, scope).await?;
    Ok(StripeClient::new(app.http(), &app.config.stripe_api_base, credentials.secret_key))
}

pub async fn stripe_credentials(
    app: &App,
    scope: &TenantScope,
) -> Result<(StripeSettings, StripeCredentials), ApiError> {
    let not_connected = || ApiError::Conflict("the vendor has not connected a Stripe account".into());
    let settings =
        VendorRepo::new(&app.table, scope).config::<StripeSettings>().await?.ok_or_else(not_connected)?.value;
    let at = settings.secrets.as_ref().ok_or_else(not_connected)?;
    let credentials = app.secrets.get::<StripeCredentials>(scope, at).await.map_err(ApiError::internal)?;
    Ok((settings, credentials))
}

pub fn stripe_failure(err: StripeError) -> ApiError {
    match err {
        StripeError::Rejected { message, .. } => ApiError::Upstream(format!("Stripe refused the request: {message}")),
        StripeError::Unauthorized => {
            ApiError::Upstream("the vendor's Stripe key was refused; the vendor must renew it".into())
        }
        StripeError::Unavailable(why) => {
            tracing::warn!(error = %why, "stripe unavailable");
            ApiError::Upstream("Stripe is not answering; try again in a minute".into())
        }
    }
}

fn recipients_of(req: &CheckoutRequest) -> Result<Vec<Recipient>, ApiError> {
    match (&req.recipients, &req.recipients_csv) {
        (Some(list), None) => Ok(list.clone()),
        (None, Some(csv)) => parse_recipients_csv(csv),
        _ => Err(ApiError::validation(vec![FieldError::new(
            "/recipients",
            "give either recipients or recipients_csv, not both",
        )])),
    }
}

/// Reads a recipients CSV (RFC 4180, the header row first); every bad row is reported by its
/// line number, and one bad row refuses the whole order.
pub fn parse_recipients_csv(text: &str) -> Result<Vec<Recipient>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let header_ok =
        reader.headers().map(|h| h.iter().map(str::trim).eq(RECIPIENT_CSV_HEADER.iter().copied())).unwrap_or(false);
    if !header_ok {
        return Err(ApiError::validation(vec![FieldError::new(
            "/recipients_csv/line/1",
            format!("the header must be {}", RECIPIENT_CSV_HEADER.join(",")),
        )]));
    }
    let mut recipients = Vec::new();
    let mut errors = Vec::new();
    for row in reader.records() {
        let row = match row {
            Ok(row) => row,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line());
                errors.push(FieldError::new(format!("/recipients_csv/line/{line}"), err.to_string()));
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line());
        let field = |i: usize| row.get(i).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let address_given = (4..10).any(|i| field(i).is_some());
        let recipient = Recipient {
            name: field(0).unwrap_or_default(),
            email: field(1).unwrap_or_default(),
            shipping_method_id: field(2).unwrap_or_default(),
            gift_message: field(3),
            address: address_given.then(|| super::model::Address {
                line1: field(4).unwrap_or_default(),
                line2: field(5),
                city: field(6).unwrap_or_default(),
                postal_code: field(7).unwrap_or_default(),
                region: field(8),
                country: field(9).unwrap_or_default(),
            }),
        };
        check_recipient(&recipient, &format!("/recipients_csv/line/{line}"), &mut errors);
        recipients.push(recipient);
    }
    ApiError::reject_if_any(errors)?;
    Ok(recipients)
}

/// The request's own shape: counts, quantities, recipients. Returns (expiry, reminder) days.
fn check_request(req: &CheckoutRequest, recipients: &[Recipient]) -> Result<(u32, u32), ApiError> {
    let mut errors = Vec::new();
    if req.items.is_empty() || req.items.len() > MAX_LINES {
        errors.push(FieldError::new("/items", format!("a bundle has 1 to {MAX_LINES} items")));
    }
    for (i, item) in req.items.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            errors.push(FieldError::new(format!("/items/{i}/quantity"), format!("is 1 to {MAX_QUANTITY}")));
        }
        if req.items[..i].iter().any(|other| other.variant_id == item.variant_id) {
            errors.push(FieldError::new(format!("/items/{i}/variant_id"), "is already in the bundle"));
        }
    }
    crate::vendors::model::check_name(&req.sender_name, "/sender_name", &mut errors);
    if let Some(email) = &req.buyer_email {
        crate::vendors::model::check_email(email, "/buyer_email", &mut errors);
    }
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        errors.push(FieldError::new("/recipients", format!("an order has 1 to {MAX_RECIPIENTS} recipients")));
    }
    if req.recipients.is_some() {
        for (i, r) in recipients.iter().enumerate() {
            check_recipient(r, &format!("/recipients/{i}"), &mut errors);
        }
    }
    let expiry = req.expires_after_days.unwrap_or(DEFAULT_EXPIRY_DAYS);
    // No reminder fits a one-day link: 0 means none.
    let reminder = req.remind_after_days.unwrap_or(DEFAULT_REMINDER_DAYS.min(expiry.saturating_sub(1)));
    if !(1..=365).contains(&expiry) {
        errors.push(FieldError::new("/expires_after_days", "is 1 to 365"));
    }
    if reminder >= expiry && reminder > 0 {
        errors.push(FieldError::new("/remind_after_days", "is before the expiry (0: no reminder)"));
    }
    ApiError::reject_if_any(errors)?;
    Ok((expiry, reminder))
}

/// Prices the bundle as the storefront shows it, and checks that every variant is listed,
/// visible, active and in stock for every recipient.
async fn price_lines(
    app: &App,
    scope: &TenantScope,
    storefront_id: &str,
    currency: &str,
    items: &[CheckoutItem],
    recipients: usize,
) -> Result<Vec<OrderLine>, ApiError> {
    let storefronts = StorefrontRepo::new(&app.table, scope);
    let catalog = CatalogRepo::new(&app.table, scope);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut products: HashMap<String, Option<_>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let unavailable = |why: &str| FieldError::new(format!("/items/{i}"), why.to_owned());
        let listing = storefronts.listing(storefront_id, &item.product_id).await?;
        let Some(listing) = listing.filter(|l| l.value.is_listed() && l.value.is_available_at(now)) else {
            errors.push(unavailable("this product is not on the storefront"));
            continue;
        };
        if !products.contains_key(&item.product_id) {
            products.insert(item.product_id.clone(), catalog.product_with_variants(&item.product_id).await?);
        }
        let Some(Some((product, variants))) = products.get(&item.product_id) else {
            errors.push(unavailable("this product is not on the storefront"));
            continue;
        };
        let o = &listing.value.overrides;
        let Some(variant) = variants.iter().map(|v| &v.value).find(|v| v.id == item.variant_id && is_visible(v, o))
        else {
            errors.push(unavailable("this variant is not on the storefront"));
            continue;
        };
        if variant.currency != currency {
            errors.push(unavailable("this variant is priced in another currency than the storefront"));
            continue;
        }
        let needed = i64::from(item.quantity) * recipients as i64;
        if variant.inventory_policy == InventoryPolicy::Deny && variant.stock_quantity < needed {
            errors.push(unavailable(&format!(
                "only {} in stock; the order needs {needed}",
                variant.stock_quantity.max(0)
            )));
            continue;
        }
        let price = storefront_price(variant, o);
        let swap_variant_ids = variants
            .iter()
            .map(|v| &v.value)
            .filter(|v| v.id != variant.id && is_visible(v, o) && storefront_price(v, o) <= price)
            .map(|v| v.id.clone())
            .take(MAX_SWAP_CHOICES)
            .collect();
        let labels = variant_labels(&product.value.options, variant);
        lines.push(OrderLine {
            product_id: product.value.id.clone(),
            variant_id: variant.id.clone(),
            title: o.title.clone().unwrap_or_else(|| product.value.title.clone()),
            variant_title: labels.iter().map(|(_, v)| *v).collect::<Vec<_>>().join(" / "),
            sku: variant.sku.clone(),
            quantity: item.quantity,
            unit_price_minor: price,
            weight_grams: i64::from(variant.weight_grams.unwrap_or(0)),
            swap_variant_ids,
        });
    }
    ApiError::reject_if_any(errors)?;
    Ok(lines)
}

/// Each recipient's shipping: the method's price to their country, or, when the recipient
/// chooses the address, to the method's zone (whose countries the address must then be in).
fn shipping_amounts(
    rules: &ShippingRules,
    currency: &str,
    lines: &[OrderLine],
    recipients: &[Recipient],
) -> Result<Vec<i64>, ApiError> {
    if rules.currency != currency {
        return Err(ApiError::Conflict(format!(
            "the vendor's shipping rates are in {}, the storefront sells in {currency}",
            rules.currency
        )));
    }
    let weight = bundle_weight_grams(lines);
    let value = bundle_minor(lines);
    let mut amounts = Vec::with_capacity(recipients.len());
    let mut errors = Vec::new();
    for (i, r) in recipients.iter().enumerate() {
        let pointer = format!("/recipients/{i}/shipping_method_id");
        let Some(method) = rules.methods.iter().find(|m| m.id == r.shipping_method_id) else {
            errors.push(FieldError::new(pointer, "is not one of the vendor's shipping methods"));
            continue;
        };
        let country = match &r.address {
            Some(address) => Some(address.country.clone()),
            None => rules.zones.iter().find(|z| z.id == method.zone_id).and_then(|z| z.countries.first().cloned()),
        };
        let quote = country.and_then(|c| rules.quote(&c, weight, value).into_iter().find(|q| q.method_id == method.id));
        match quote {
            Some(q) => amounts.push(q.amount_minor),
            None => errors.push(FieldError::new(pointer, "this method does not ship this parcel to this address")),
        }
        // Keep the answer readable for a 10,000-row mistake.
        if errors.len() >= 100 {
            break;
        }
    }
    ApiError::reject_if_any(errors)?;
    Ok(amounts)
}

// ---------------------------------------------------------------- reads

/// Buyers see their own orders only; anyone else's is answered as unknown.
fn visible_to(scope: &TenantScope, order: &Order) -> bool {
    scope.actor().role != Role::Buyer || order.buyer_id == scope.actor().user_id
}

pub async fn get_order(
    app: &App,
    scope: &TenantScope,
    order_id: &str,
) -> Result<crate::store::Versioned<Order>, ApiError> {
    OrderRepo::new(&app.table, scope)
        .order(order_id)
        .await?
        .filter(|o| visible_to(scope, &o.value))
        .ok_or_else(|| ApiError::NotFound(format!("order {order_id} not found")))
}

pub async fn list_orders(
    app: &App,
    scope: &TenantScope,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<OrderList, ApiError> {
    let (orders, next) = OrderRepo::new(&app.table, scope).orders(limit, cursor.as_ref()).await?;
    Ok(OrderList {
        items: orders.into_iter().filter(|o| visible_to(scope, &o.value)).map(|o| o.value.into()).collect(),
        next_cursor: next.map(|c| c.encode()),
    })
}

pub async fn list_units(
    app: &App,
    scope: &TenantScope,
    order_id: &str,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<UnitList, ApiError> {
    get_order(app, scope, order_id).await?;
    let (units, next) = OrderRepo::new(&app.table, scope).units(order_id, limit, cursor.as_ref()).await?;
    Ok(UnitList { items: units.into_iter().map(|u| u.value.into()).collect(), next_cursor: next.map(|c| c.encode()) })
}

// ---------------------------------------------------------------- Stripe webhooks

/// The part of a Stripe event Bestow reads.
#[derive(serde::Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: StripeEventData,
}

#[derive(serde::Deserialize)]
struct StripeEventData {
    object: serde_json::Value,
}

/// What a webhook delivery did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookOutcome {
    pub event_id: String,
    /// `applied`, or why the event was recorded without effect.
    pub outcome: String,
    /// The event had been received before: nothing was done again.
    pub duplicate: bool,
}

/// Checks a Stripe webhook's signature with the vendor's own signing secret before anything
/// is parsed, then applies the event once.
pub async fn stripe_webhook(
    app: &App,
    scope: &TenantScope,
    payload: &[u8],
    signature: Option<&str>,
) -> Result<WebhookOutcome, ApiError> {
    let (_, credentials) = stripe_credentials(app, scope).await.map_err(|err| match err {
        ApiError::Conflict(_) => {
            ApiError::BadRequest("this endpoint has no Stripe signing secret to check events with".into())
        }
        other => other,
    })?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    crate::integrations::stripe::verify_webhook(payload, signature, credentials.webhook_secret.expose(), now)
        .map_err(|err| ApiError::BadRequest(format!("the Stripe-Signature check failed: {err}")))?;
    let event: StripeEvent = serde_json::from_slice(payload)
        .map_err(|err| ApiError::BadRequest(format!("the event is not a Stripe event: {err}")))?;
    let payment = match event.event_type.as_str() {
        "payment_intent.succeeded" => Some(super::model::PaymentEvent::Succeeded),
        "payment_intent.payment_failed" => Some(super::model::PaymentEvent::Failed),
        "payment_intent.canceled" => Some(super::model::PaymentEvent::Canceled),
        _ => None,
    };
    match (payment, event.event_type.as_str()) {
        (Some(payment), _) => apply_payment_event(app, scope, &event, payment).await,
        (None, "refund.created" | "refund.updated") => apply_refund_event(app, scope, &event).await,
        (None, "charge.refunded") => record_charge_refunded(app, scope, &event).await,
        (None, other) => record_only(app, scope, &event, None, format!("{other} is not an event Bestow acts on")).await,
    }
}

fn event_record(event: &StripeEvent, order_id: Option<&str>, outcome: &str) -> super::repo::StripeEventRecord {
    super::repo::StripeEventRecord {
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        order_id: order_id.map(str::to_owned),
        outcome: outcome.to_owned(),
        received_at: now_rfc3339(),
    }
}

async fn record_only(
    app: &App,
    scope: &TenantScope,
    event: &StripeEvent,
    order_id: Option<&str>,
    outcome: String,
) -> Result<WebhookOutcome, ApiError> {
    let write = OrderRepo::new(&app.table, scope).record_event(&event_record(event, order_id, &outcome))?;
    let duplicate = match app.table.transact(vec![write]).await {
        Ok(()) => false,
        Err(crate::store::StoreError::TransactionConditionFailed { .. }) => true,
        Err(other) => return Err(other.into()),
    };
    Ok(WebhookOutcome { event_id: event.id.clone(), outcome, duplicate })
}

/// Moves the order named by the event's PaymentIntent, if the event fits its state, in the
/// same transaction that records the event (so a redelivery finds the record and does
/// nothing). A paid order gets its split job, also on a redelivery, since the first delivery
/// may have failed after its commit and before the job was queued.
async fn apply_payment_event(
    app: &App,
    scope: &TenantScope,
    event: &StripeEvent,
    payment: super::model::PaymentEvent,
) -> Result<WebhookOutcome, ApiError> {
    use super::model::{Transition, transition};
    let repo = OrderRepo::new(&app.table, scope);
    let intent_id = event.data.object.get("id").and_then(|v| v.as_str()).unwrap_or_default();
    let Some(order_id) = repo.order_of_payment_intent(intent_id).await? else {
        return record_only(app, scope, event, None, format!("no order has PaymentIntent {intent_id}")).await;
    };
    for _ in 0..5 {
        let order =
            repo.order(&order_id).await?.ok_or_else(|| ApiError::internal("a PaymentIntent names a missing order"))?;
        let amount = event.data.object.get("amount").and_then(|v| v.as_i64());
        let transition = match transition(order.value.status, payment) {
            Transition::To(_) if amount.is_some_and(|a| a != order.value.totals.total_minor) => {
                Transition::Ignored(format!("the PaymentIntent's amount {amount:?} is not the order's total"))
            }
            other => other,
        };
        let outcome = match &transition {
            Transition::To(_) => "applied".to_owned(),
            Transition::Ignored(why) => why.clone(),
        };
        let mut writes = vec![repo.record_event(&event_record(event, Some(&order_id), &outcome))?];
        let mut next = order.value.clone();
        if let Transition::To(status) = transition {
            next.status = status;
            next.updated_at = now_rfc3339();
            writes.push(repo.save_order(&next, order.version)?);
            // The money arrives with the transition to paid, in the same transaction.
            if status == OrderStatus::Paid {
                let entry = crate::ledger::model::LedgerEntry::new(
                    crate::ledger::model::EntryKind::OrderPaid,
                    order.value.totals.total_minor,
                    &order.value.currency,
                    &order_id,
                    Some(&order_id),
                    &next.updated_at,
                    format!("order paid (Stripe {})", intent_id),
                )
                .map_err(ApiError::internal)?
                .with_units(order.value.recipient_count);
                writes.extend(crate::ledger::repo::LedgerRepo::new(&app.table, scope).transact_record(&entry)?);
                // What the vendor's plan counts: recipients of paid orders per month.
                let month = crate::plans::model::usage_month(time::OffsetDateTime::now_utc());
                writes.push(
                    crate::plans::repo::PlanRepo::new(&app.table, scope)
                        .transact_count_recipients(&month, order.value.recipient_count)?,
                );
            }
            let audit = AuditEntry::new(scope, &format!("order.{}", status.as_str()), format!("orders/{order_id}"))
                .versions(Some(order.version), Some(order.version + 1))
                .summary(format!("Stripe event {} ({})", event.id, event.event_type));
            writes.push(AuditLog::new(&app.table, scope).transact_put(&audit)?);
        }
        let duplicate = match app.table.transact(writes).await {
            Ok(()) => false,
            Err(crate::store::StoreError::TransactionConditionFailed { failed }) if failed.contains(&0) => true,
            // The order changed between the read and the write: read it again.
            Err(crate::store::StoreError::TransactionConditionFailed { .. }) => continue,
            Err(other) => return Err(other.into()),
        };
        let status = if duplicate { repo.order(&order_id).await?.map(|o| o.value.status) } else { Some(next.status) };
        if status == Some(OrderStatus::Paid) {
            app.jobs
                .enqueue(scope, &super::jobs::OrderSplit { order_id: order_id.clone() })
                .await
                .map_err(ApiError::internal)?;
        }
        let outcome = if duplicate { "already received".to_owned() } else { outcome };
        return Ok(WebhookOutcome { event_id: event.id.clone(), outcome, duplicate });
    }
    Err(ApiError::Conflict("the order kept changing; Stripe will deliver the event again".into()))
}

// ---------------------------------------------------------------- refunds

/// Asks Stripe to refund units of an order. The units are held (they cannot be packed) from
/// now until Stripe's answer settles the refund: cancelled when Stripe refunded, released when
/// it did not. Stripe's answer comes back on the create call or later as `refund.updated`.
pub async fn create_refund(
    app: &App,
    scope: &TenantScope,
    order_id: &str,
    req: super::dto::RefundRequest,
) -> Result<super::dto::RefundsResponse, ApiError> {
    use super::model::MAX_REFUND_UNITS;
    let order = get_order(app, scope, order_id).await?;
    if order.value.status != OrderStatus::Split {
        return Err(ApiError::Conflict(format!(
            "the order is {}: only an order split into units can be refunded",
            order.value.status.as_str()
        )));
    }
    if req.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::validation(vec![FieldError::new("/reason", "at most 500 characters")]));
    }
    let numbers: Vec<u32> = match (&req.unit_numbers, req.whole_order) {
        (Some(numbers), false) => {
            let mut errors = Vec::new();
            if numbers.is_empty() || numbers.len() > MAX_REFUND_UNITS {
                errors.push(FieldError::new("/unit_numbers", format!("1 to {MAX_REFUND_UNITS} units per refund")));
            }
            for (i, n) in numbers.iter().enumerate() {
                if *n == 0 || *n > order.value.recipient_count || numbers[..i].contains(n) {
                    errors.push(FieldError::new(format!("/unit_numbers/{i}"), "no such unit, or listed twice"));
                }
            }
            ApiError::reject_if_any(errors)?;
            numbers.clone()
        }
        // The whole order: every unit that can still be refunded, in refunds of 94 units.
        (None, true) => refundable_units(app, scope, order_id).await?,
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "/unit_numbers",
                "give either unit_numbers or whole_order: true",
            )]));
        }
    };
    if numbers.is_empty() {
        return Err(ApiError::Conflict("no unit of this order can be refunded any more".into()));
    }

    let mut refunds = Vec::new();
    let mut held = Ok(());
    for chunk in numbers.chunks(MAX_REFUND_UNITS) {
        match hold_units(app, scope, &order.value, chunk, req.reason.as_deref()).await {
            Ok(refund) => refunds.push(refund),
            Err(err) => {
                held = Err(err);
                break;
            }
        }
    }
    let pending: Vec<super::model::Refund> = refunds.iter().map(|r| r.refund.value.clone()).collect();
    if refunds.len() == 1 && held.is_ok() {
        // One refund: Stripe's answer comes back on this request, settled from what this
        // request wrote (no read again unless something changed meanwhile).
        let Some(held) = refunds.pop() else { return Err(ApiError::internal("a held refund is gone")) };
        let known = KnownRefund { refund: Some(held.refund), units: Some(held.units), order: Some(order.clone()) };
        return match request_stripe_refund(app, scope, &order.value, &pending[0], known).await {
            Ok(settled) => Ok(super::dto::RefundsResponse { refunds: vec![settled] }),
            Err(StripeError::Unavailable(why)) => {
                // No answer is no verdict (Stripe may have refunded): the job asks again with
                // the same idempotency key until Stripe answers.
                tracing::warn!(error = %why, refund_id = %pending[0].id, "stripe did not answer a refund; queued");
                enqueue_refund_requests(app, scope, &pending).await?;
                Ok(super::dto::RefundsResponse { refunds: pending })
            }
            Err(err) => Err(stripe_failure(err)),
        };
    }
    // Held refunds are asked of Stripe by jobs, also when a later chunk could not be held.
    enqueue_refund_requests(app, scope, &pending).await?;
    held?;
    Ok(super::dto::RefundsResponse { refunds: pending })
}

/// The units of an order that can be refunded: not shipped, not refunded, not held.
async fn refundable_units(app: &App, scope: &TenantScope, order_id: &str) -> Result<Vec<u32>, ApiError> {
    use crate::fulfillment::model::{GiftState, UnitStatus};
    let repo = OrderRepo::new(&app.table, scope);
    let (mut numbers, mut cursor) = (Vec::new(), None);
    loop {
        let (units, next) = repo.units(order_id, 100, cursor.as_ref()).await?;
        numbers.extend(
            units
                .into_iter()
                .map(|u| u.value)
                .filter(|u| {
                    u.refund_id.is_none()
                        && matches!(u.status, UnitStatus::AwaitingAddress | UnitStatus::Ready | UnitStatus::Packed)
                        || (u.status == UnitStatus::Cancelled && u.gift == GiftState::Expired && u.refund_id.is_none())
                })
                .map(|u| u.number),
        );
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(numbers),
        }
    }
}

async fn enqueue_refund_requests(
    app: &App,
    scope: &TenantScope,
    refunds: &[super::model::Refund],
) -> Result<(), ApiError> {
    let jobs: Vec<super::jobs::RefundRequest> = refunds
        .iter()
        .map(|r| super::jobs::RefundRequest { order_id: r.order_id.clone(), refund_id: r.id.clone() })
        .collect();
    app.jobs.enqueue_batch(scope, &jobs).await.map(|_| ()).map_err(ApiError::internal)
}

/// Asks Stripe for a pending refund (the idempotency key is the refund's, so asking again is
/// safe) and settles it on the answer, from `known` where the caller has read or written it.
/// Answers the refund as it stands after; `Unavailable` leaves it pending for the caller to
/// retry.
pub async fn request_stripe_refund(
    app: &App,
    scope: &TenantScope,
    order: &Order,
    refund: &super::model::Refund,
    known: KnownRefund,
) -> Result<super::model::Refund, StripeError> {
    let metadata = BTreeMap::from([
        ("bestow_vendor".to_owned(), scope.vendor_id().to_string()),
        ("bestow_order".to_owned(), order.id.clone()),
        ("bestow_refund".to_owned(), refund.id.clone()),
    ]);
    let client = stripe_client(app, scope).await.map_err(|e| StripeError::Unavailable(e.to_string()))?;
    let asked = client
        .create_refund(
            &crate::integrations::stripe::NewRefund {
                payment_intent: &order.payment_intent_id,
                amount_minor: refund.amount_minor,
                metadata: &metadata,
            },
            &format!("bestow-refund-{}-{}", scope.vendor_id(), refund.id),
        )
        .await;
    let why;
    let state = match &asked {
        Ok(r) => StripeRefundState { status: &r.status, id: Some(&r.id), failure: None },
        Err(StripeError::Unavailable(why)) => return Err(StripeError::Unavailable(why.clone())),
        Err(err) => {
            why = err.to_string();
            StripeRefundState { status: "failed", id: None, failure: Some(&why) }
        }
    };
    let settled = settle_refund(app, scope, &order.id, &refund.id, state, None, known).await;
    let (_, refund) = settled.map_err(|e| StripeError::Unavailable(format!("settling: {e}")))?;
    asked.map(|_| refund)
}

/// Writes a pending refund and marks its units as held by it, in one transaction. Units change
/// under background jobs (gift delivery marks them notified), so a conflict reads them again.
/// Answers the refund and its units as written.
async fn hold_units(
    app: &App,
    scope: &TenantScope,
    order: &Order,
    numbers: &[u32],
    reason: Option<&str>,
) -> Result<HeldRefund, ApiError> {
    use super::model::{Refund, RefundStatus};
    use crate::fulfillment::model::UnitStatus;
    let repo = OrderRepo::new(&app.table, scope);
    let keys: Vec<_> = numbers.iter().map(|n| crate::store::keys::unit_key(scope, &order.id, *n)).collect();
    for _ in 0..4 {
        let units = units_by_number(app, &keys).await?;
        let mut errors = Vec::new();
        for (i, n) in numbers.iter().enumerate() {
            let pointer = format!("/unit_numbers/{i}");
            match units.get(n) {
                None => errors.push(FieldError::new(pointer, "no such unit")),
                Some(u) if u.value.refund_id.is_some() => {
                    errors.push(FieldError::new(pointer, "a refund of this unit is in progress"))
                }
                // An expired gift (cancelled, never shipped) is refundable; a refunded one is not.
                Some(u)
                    if matches!(u.value.status, UnitStatus::Shipped | UnitStatus::Delivered)
                        || (u.value.status == UnitStatus::Cancelled
                            && u.value.gift != crate::fulfillment::model::GiftState::Expired) =>
                {
                    errors.push(FieldError::new(
                        pointer,
                        format!("the unit is {} and cannot be refunded", u.value.status.as_str()),
                    ))
                }
                Some(_) => {}
            }
        }
        ApiError::reject_if_any(errors)?;
        let now = now_rfc3339();
        let refund = Refund {
            id: crate::store::ids::new_id(),
            order_id: order.id.clone(),
            unit_numbers: numbers.to_vec(),
            amount_minor: units.values().map(|u| u.value.amount_minor).sum(),
            currency: order.currency.clone(),
            status: RefundStatus::Pending,
            stripe_refund_id: None,
            reason: reason.map(str::to_owned),
            failure: None,
            requested_by: scope.actor().user_id.clone(),
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        let mut writes = vec![repo.save_refund(&refund, None)?];
        let mut held_units = Vec::with_capacity(units.len());
        for unit in units.values() {
            let mut held = unit.value.clone();
            held.refund_id = Some(refund.id.clone());
            held.updated_at = now.clone();
            writes.push(repo.save_unit(&held, unit.version)?);
            held_units.push(crate::store::Versioned { value: held, version: unit.version + 1 });
        }
        let audit = AuditEntry::new(scope, "refund.requested", format!("orders/{}/refunds/{}", order.id, refund.id))
            .summary(format!("{} {} for units {numbers:?}", refund.amount_minor, refund.currency));
        writes.push(AuditLog::new(&app.table, scope).transact_put(&audit)?);
        match app.table.transact(writes).await {
            Ok(()) => {
                return Ok(HeldRefund {
                    refund: crate::store::Versioned { value: refund, version: 1 },
                    units: held_units,
                });
            }
            Err(crate::store::StoreError::TransactionConditionFailed { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Conflict("these units keep changing; try again".into()))
}

async fn units_by_number(
    app: &App,
    keys: &[crate::store::Key],
) -> Result<BTreeMap<u32, crate::store::Versioned<crate::fulfillment::model::FulfillmentUnit>>, ApiError> {
    let items = app.table.batch_get(keys).await?;
    let mut units = BTreeMap::new();
    for item in items {
        let unit = crate::store::decode::<crate::fulfillment::model::FulfillmentUnit>(item)?;
        units.insert(unit.value.number, unit);
    }
    Ok(units)
}

/// A pending refund and its held units, as written.
struct HeldRefund {
    refund: crate::store::Versioned<super::model::Refund>,
    units: Vec<crate::store::Versioned<crate::fulfillment::model::FulfillmentUnit>>,
}

/// A refund, its units and its order as the caller last read or wrote them. Settling starts
/// from what is known and reads the rest; a write conflict reads everything again.
#[derive(Default)]
pub struct KnownRefund {
    pub refund: Option<crate::store::Versioned<super::model::Refund>>,
    pub units: Option<Vec<crate::store::Versioned<crate::fulfillment::model::FulfillmentUnit>>>,
    pub order: Option<crate::store::Versioned<Order>>,
}

/// What settling a refund did.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    /// Stripe's verdict was applied (or, for a pending refund, its Stripe id recorded).
    Applied,
    /// The refund had been settled before: nothing changed.
    AlreadySettled,
    /// The event recorded with the settlement had been received before.
    DuplicateEvent,
}

/// Applies Stripe's status of a refund, once: `succeeded` cancels its units and counts it on
/// the order; `failed`/`canceled` releases the units; anything else only records Stripe's id.
/// `event` (a webhook's record) is written in the same transaction, so a redelivered event
/// finds it and changes nothing. Answers the refund as it stands after.
async fn settle_refund(
    app: &App,
    scope: &TenantScope,
    order_id: &str,
    refund_id: &str,
    stripe: StripeRefundState<'_>,
    event: Option<&super::repo::StripeEventRecord>,
    known: KnownRefund,
) -> Result<(Settled, super::model::Refund), ApiError> {
    let StripeRefundState { status: stripe_status, id: stripe_refund_id, failure } = stripe;
    use super::model::{RefundStatus, refund_settlement};
    use crate::fulfillment::model::{GiftState, UnitStatus};
    let repo = OrderRepo::new(&app.table, scope);
    let mut known = known;
    for _ in 0..5 {
        let KnownRefund { refund, units, order } = std::mem::take(&mut known);
        let refund = match refund {
            Some(refund) => refund,
            None => repo
                .refund(order_id, refund_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("refund {refund_id} not found")))?,
        };
        let verdict = refund_settlement(stripe_status);
        let unchanged_pending = verdict.is_none() && refund.value.stripe_refund_id.as_deref() == stripe_refund_id;
        if refund.value.status != RefundStatus::Pending || unchanged_pending {
            return Ok((Settled::AlreadySettled, refund.value));
        }
        let now = now_rfc3339();
        let mut writes = Vec::new();
        if let Some(event) = event {
            writes.push(repo.record_event(event)?);
        }
        let mut next = refund.value.clone();
        next.updated_at = now.clone();
        if let Some(id) = stripe_refund_id {
            next.stripe_refund_id = Some(id.to_owned());
        }
        if let Some(status) = verdict {
            next.status = status;
            next.failure = failure
                .map(str::to_owned)
                .or_else(|| (status == RefundStatus::Failed).then(|| stripe_status.to_owned()));
            let units = match units {
                Some(units) => units,
                None => {
                    let keys: Vec<_> = refund
                        .value
                        .unit_numbers
                        .iter()
                        .map(|n| crate::store::keys::unit_key(scope, order_id, *n))
                        .collect();
                    units_by_number(app, &keys).await?.into_values().collect()
                }
            };
            for unit in units {
                let mut settled = unit.value.clone();
                if settled.refund_id.as_deref() != Some(refund_id) {
                    continue;
                }
                settled.refund_id = None;
                settled.updated_at = now.clone();
                if status == RefundStatus::Succeeded {
                    settled.status = UnitStatus::Cancelled;
                    settled.gift = GiftState::Cancelled;
                }
                writes.push(repo.save_unit(&settled, unit.version)?);
            }
            if status == RefundStatus::Succeeded {
                let order = match order {
                    Some(order) => order,
                    None => {
                        repo.order(order_id).await?.ok_or_else(|| ApiError::internal("a refund's order is gone"))?
                    }
                };
                let mut refunded = order.value.clone();
                refunded.refunded_minor += refund.value.amount_minor;
                refunded.updated_at = now.clone();
                writes.push(repo.save_order(&refunded, order.version)?);
                let entry = crate::ledger::model::LedgerEntry::new(
                    crate::ledger::model::EntryKind::Refund,
                    refund.value.amount_minor,
                    &refund.value.currency,
                    refund_id,
                    Some(order_id),
                    &now,
                    format!("refund of {} unit(s)", refund.value.unit_numbers.len()),
                )
                .map_err(ApiError::internal)?;
                writes.extend(crate::ledger::repo::LedgerRepo::new(&app.table, scope).transact_record(&entry)?);
            }
            let action = if status == RefundStatus::Succeeded { "refund.succeeded" } else { "refund.failed" };
            let audit = AuditEntry::new(scope, action, format!("orders/{order_id}/refunds/{refund_id}"))
                .summary(format!("{} {}, Stripe: {stripe_status}", refund.value.amount_minor, refund.value.currency));
            writes.push(AuditLog::new(&app.table, scope).transact_put(&audit)?);
        }
        writes.push(repo.save_refund(&next, Some(refund.version))?);
        match app.table.transact(writes).await {
            Ok(()) => return Ok((Settled::Applied, next)),
            Err(crate::store::StoreError::TransactionConditionFailed { failed })
                if event.is_some() && failed.contains(&0) =>
            {
                return Ok((Settled::DuplicateEvent, refund.value));
            }
            Err(crate::store::StoreError::TransactionConditionFailed { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Conflict("the refund's units kept changing; try again".into()))
}

/// What Stripe says of a refund.
#[derive(Clone, Copy)]
struct StripeRefundState<'a> {
    /// Stripe's refund status (`pending`, `succeeded`, `failed`, …).
    status: &'a str,
    id: Option<&'a str>,
    /// Why it failed, when the failure is ours to tell (Stripe refused the call).
    failure: Option<&'a str>,
}

/// `refund.updated`: Stripe's later verdict on a refund Bestow asked for.
async fn apply_refund_event(app: &App, scope: &TenantScope, event: &StripeEvent) -> Result<WebhookOutcome, ApiError> {
    let object = &event.data.object;
    let text =
        |path: &[&str]| path.iter().try_fold(object, |v, k| v.get(*k)).and_then(|v| v.as_str()).map(str::to_owned);
    let (Some(order_id), Some(refund_id)) = (text(&["metadata", "bestow_order"]), text(&["metadata", "bestow_refund"]))
    else {
        return record_only(app, scope, event, None, "a refund Bestow did not ask for".into()).await;
    };
    let status = text(&["status"]).unwrap_or_default();
    let stripe_id = text(&["id"]);
    let outcome = format!("refund {refund_id} is {status} at Stripe");
    let record = event_record(event, Some(&order_id), &outcome);
    let state = StripeRefundState { status: &status, id: stripe_id.as_deref(), failure: None };
    let settled = settle_refund(app, scope, &order_id, &refund_id, state, Some(&record), KnownRefund::default())
        .await
        .map(|(settled, _)| settled)
        .or_else(|err| match err {
            ApiError::NotFound(_) => Ok(Settled::AlreadySettled),
            other => Err(other),
        })?;
    match settled {
        Settled::Applied => Ok(WebhookOutcome { event_id: event.id.clone(), outcome, duplicate: false }),
        Settled::DuplicateEvent => {
            Ok(WebhookOutcome { event_id: event.id.clone(), outcome: "already received".into(), duplicate: true })
        }
        Settled::AlreadySettled => {
            record_only(app, scope, event, Some(&order_id), format!("{outcome}; already settled")).await
        }
    }
}

/// `charge.refunded`: recorded with what Stripe has refunded of the charge in all, for
/// reconciliation (refunds made in Stripe's dashboard show up here, not as settled refunds).
async fn record_charge_refunded(
    app: &App,
    scope: &TenantScope,
    event: &StripeEvent,
) -> Result<WebhookOutcome, ApiError> {
    let object = &event.data.object;
    let intent = object.get("payment_intent").and_then(|v| v.as_str()).unwrap_or_default();
    let refunded = object.get("amount_refunded").and_then(|v| v.as_i64()).unwrap_or_default();
    let order_id = OrderRepo::new(&app.table, scope).order_of_payment_intent(intent).await?;
    let settled = match &order_id {
        Some(id) => OrderRepo::new(&app.table, scope).order(id).await?.map(|o| o.value.refunded_minor),
        None => None,
    };
    let outcome = format!("Stripe has refunded {refunded} of the charge; Bestow has settled {}", settled.unwrap_or(0));
    record_only(app, scope, event, order_id.as_deref(), outcome).await
}
