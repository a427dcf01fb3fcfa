//! The order split: a paid order becomes one fulfillment unit per recipient, each with its
//! own redemption code, exactly once.
//!
//! A transaction holds 100 items, so the split writes chunks of 50 recipients, each one
//! transaction of 50 units and their 50 code claims, every item conditioned on not existing.
//! Chunks and unit keys are fixed by the recipients' order, so a chunk is either wholly
//! written or not at all: a repeated chunk (a duplicate event, a retry after a crash, a second
//! worker) fails on its first unit and is counted as done, and a code that collides with any
//! other code fails the claim and is drawn again. The order records how far the run of
//! written chunks reaches, so a resumed split starts there, and becomes `split` only when
//! every unit exists.

use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::model::{Order, OrderStatus, RECIPIENTS_PER_CHUNK, Recipient, bundle_minor, unit_amounts};
use super::repo::OrderRepo;
use super::service::{KnownRefund, request_stripe_refund};
use crate::app::App;
use crate::audit::model::AuditEntry;
use crate::audit::repo::AuditLog;
use crate::fulfillment::model::{FulfillmentUnit, GiftState, RedemptionCode, UnitLine, UnitStatus};
use crate::jobs::registry::WorkerDef;
use crate::jobs::worker::process_batch;
use crate::jobs::{Job, JobCtx, JobError, JobHandler};
use crate::store::{StoreError, Versioned};
use crate::tenancy::TenantScope;
use crate::vendors::service::now_rfc3339;

/// Chunk transactions in flight at once: enough to hide latency, few enough not to provoke
/// throttling of the order's partition.
const CHUNKS_IN_FLIGHT: usize = 4;
/// The order's progress is saved after this many chunks (and at the end).
const PROGRESS_EVERY_CHUNKS: usize = 20;
/// A code collision (p ≈ n/2⁸⁰) redraws the chunk's codes; three in a row means a bug.
const CODE_DRAWS: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSplit {
    pub order_id: String,
}

impl Job for OrderSplit {
    const TYPE: &'static str = "order_split";

    fn idempotency_key(&self) -> String {
        self.order_id.clone()
    }
}

/// What a split run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SplitOutcome {
    pub units: u32,
    /// Chunks this run wrote, and chunks it found written by an earlier or concurrent run.
    pub chunks_written: u32,
    pub chunks_found: u32,
    /// The order was already split when the run began.
    pub already_split: bool,
}

pub struct OrderSplitHandler;

impl JobHandler for OrderSplitHandler {
    type Job = OrderSplit;

    async fn handle(&self, ctx: &JobCtx, job: OrderSplit) -> Result<serde_json::Value, JobError> {
        let outcome = split_order(&ctx.app, &ctx.scope, &job.order_id).await?;
        // Also when already split: a run that marked the order split may have died before
        // queueing the deliveries (each delivery job is idempotent and skips notified units).
        crate::fulfillment::jobs::enqueue_gift_delivery(&ctx.app, &ctx.scope, &job.order_id, outcome.units).await?;
        Ok(json!(outcome))
    }
}

pub const ORDER_SPLIT: WorkerDef = WorkerDef {
    job_type: OrderSplit::TYPE,
    function: "order-split",
    run: |app, event, deadline_ms| {
        Box::pin(async move { process_batch(&app, std::sync::Arc::new(OrderSplitHandler), event, deadline_ms).await })
    },
};

/// Splits a paid order; safe to run any number of times, at once or one after another.
pub async fn split_order(app: &App, scope: &TenantScope, order_id: &str) -> Result<SplitOutcome, JobError> {
    let repo = OrderRepo::new(&app.table, scope);
    let order =
        repo.order(order_id).await?.ok_or_else(|| JobError::Permanent(format!("order {order_id} not found")))?;
    match order.value.status {
        OrderStatus::Split => {
            return Ok(SplitOutcome { units: order.value.recipient_count, already_split: true, ..Default::default() });
        }
        OrderStatus::Paid => {}
        other => {
            return Err(JobError::Permanent(format!("order {order_id} is {} and cannot be split", other.as_str())));
        }
    }
    let (recipients, shipping) = repo.recipients(order_id).await?;
    if recipients.len() != order.value.recipient_count as usize {
        return Err(JobError::Permanent(format!(
            "order {order_id} lists {} recipients but {} are stored",
            order.value.recipient_count,
            recipients.len()
        )));
    }
    let amounts = unit_amounts(bundle_minor(&order.value.lines), &shipping, order.value.totals.tax_minor);
    let first_chunk = order.value.split.units_created as usize / RECIPIENTS_PER_CHUNK;
    let expires_at = expiry(order.value.expires_after_days);
    let total = recipients.len() as u32;
    let mut outcome = SplitOutcome { units: total, ..Default::default() };
    let chunks = recipients.len().div_ceil(RECIPIENTS_PER_CHUNK);
    let chunk_of = |chunk: usize| {
        &recipients[chunk * RECIPIENTS_PER_CHUNK..((chunk + 1) * RECIPIENTS_PER_CHUNK).min(recipients.len())]
    };
    let mut writes = stream::iter(first_chunk..chunks)
        .map(|chunk| write_chunk(&repo, &order.value, chunk, chunk_of(chunk), &amounts, &expires_at))
        .buffered(CHUNKS_IN_FLIGHT);
    let mut since_progress = 0;
    // The order as last read or written: saving progress starts from it and reads the order
    // again only when another writer changed it meanwhile.
    let mut last_saved = Some(order.clone());
    while let Some(result) = writes.next().await {
        let (chunk, wrote) = result?;
        if wrote {
            outcome.chunks_written += 1;
        } else {
            outcome.chunks_found += 1;
        }
        since_progress += 1;
        // `buffered` yields in chunk order, so every chunk up to this one exists.
        let done = (((chunk + 1) * RECIPIENTS_PER_CHUNK) as u32).min(total);
        if done < total && since_progress >= PROGRESS_EVERY_CHUNKS {
            since_progress = 0;
            last_saved = save_progress(app, scope, order_id, done, false, last_saved.take()).await?;
        }
    }
    drop(writes);
    save_progress(app, scope, order_id, total, true, last_saved).await?;
    Ok(outcome)
}

fn expiry(days: u32) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(days));
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn unit_for(
    order: &Order,
    number: u32,
    recipient: &Recipient,
    amount_minor: i64,
    expires_at: &str,
    now: &str,
) -> FulfillmentUnit {
    FulfillmentUnit {
        id: FulfillmentUnit::unit_id(&order.id, number),
        order_id: order.id.clone(),
        number,
        storefront_id: order.storefront_id.clone(),
        code: RedemptionCode::generate().as_str().to_owned(),
        recipient_name: recipient.name.clone(),
        recipient_email: recipient.email.clone(),
        gift_message: recipient.gift_message.clone(),
        sender_name: order.sender_name.clone(),
        address: recipient.address.clone(),
        shipping_method_id: recipient.shipping_method_id.clone(),
        lines: order
            .lines
            .iter()
            .map(|l| UnitLine {
                product_id: l.product_id.clone(),
                variant_id: l.variant_id.clone(),
                quantity: l.quantity,
                paid_unit_minor: l.unit_price_minor,
                allowed_variant_ids: std::iter::once(l.variant_id.clone())
                    .chain(l.swap_variant_ids.iter().cloned())
                    .collect(),
            })
            .collect(),
        amount_minor,
        refund_id: None,
        // A buyer who gave the address settled the gift; otherwise the recipient will.
        status: if recipient.address.is_some() { UnitStatus::Ready } else { UnitStatus::AwaitingAddress },
        gift: GiftState::Created,
        currency: order.currency.clone(),
        expires_at: expires_at.to_owned(),
        remind_after_days: order.remind_after_days,
        thank_you_note: None,
        reminded_at: None,
        carrier: None,
        tracking_number: None,
        external_order: None,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    }
}

/// Writes chunk `chunk` in one transaction. Returns `(chunk, true)` when this call wrote it,
/// `(chunk, false)` when it already existed.
async fn write_chunk(
    repo: &OrderRepo<'_>,
    order: &Order,
    chunk: usize,
    recipients: &[Recipient],
    amounts: &[i64],
    expires_at: &str,
) -> Result<(usize, bool), JobError> {
    let now = now_rfc3339();
    let first_number = (chunk * RECIPIENTS_PER_CHUNK) as u32 + 1;
    for _ in 0..CODE_DRAWS {
        let mut items = Vec::with_capacity(recipients.len() * 2);
        for (i, recipient) in recipients.iter().enumerate() {
            let number = first_number + i as u32;
            let amount = amounts.get(number as usize - 1).copied().unwrap_or_default();
            let unit = unit_for(order, number, recipient, amount, expires_at, &now);
            items.extend(repo.create_unit(&unit)?);
        }
        match repo.table().transact(items).await {
            Ok(()) => return Ok((chunk, true)),
            // Units are the even items: one of them taken means the whole chunk was written.
            Err(StoreError::TransactionConditionFailed { failed }) if failed.iter().any(|i| i % 2 == 0) => {
                return Ok((chunk, false));
            }
            Err(StoreError::TransactionConditionFailed { failed }) => {
                tracing::warn!(chunk, collisions = failed.len(), "redemption code collision; drawing new codes");
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(JobError::Retryable(format!("chunk {chunk}: codes collided {CODE_DRAWS} times")))
}

/// Raises the order's progress to `done` units (never lowers it); with `finished`, marks it
/// split. Starts from `known` (the order as the caller last saw it) when given; retries from a
/// fresh read when another writer (a second worker, a webhook) changed the order. Returns the
/// order as written, or `None` when there was nothing to write.
async fn save_progress(
    app: &App,
    scope: &TenantScope,
    order_id: &str,
    done: u32,
    finished: bool,
    mut known: Option<Versioned<Order>>,
) -> Result<Option<Versioned<Order>>, JobError> {
    let repo = OrderRepo::new(&app.table, scope);
    for _ in 0..8 {
        let current = match known.take() {
            Some(order) => order,
            None => repo
                .order(order_id)
                .await?
                .ok_or_else(|| JobError::Permanent(format!("order {order_id} disappeared")))?,
        };
        let Versioned { value: mut order, version } = current;
        if order.status == OrderStatus::Split || (!finished && order.split.units_created >= done) {
            return Ok(None);
        }
        let now = now_rfc3339();
        order.split.units_created = order.split.units_created.max(done);
        order.updated_at = now.clone();
        let mut writes = Vec::with_capacity(2);
        if finished {
            order.status = OrderStatus::Split;
            order.split.completed_at = Some(now);
            let audit = AuditEntry::by(
                &format!("job:{}", OrderSplit::TYPE),
                "system",
                "order.split",
                format!("orders/{order_id}"),
            )
            .versions(Some(version), Some(version + 1))
            .summary(format!("{done} fulfillment units created"));
            writes.push(AuditLog::new(&app.table, scope).transact_put(&audit)?);
        }
        writes.push(repo.save_order(&order, version)?);
        match app.table.transact(writes).await {
            Ok(()) => return Ok(Some(Versioned { value: order, version: version + 1 })),
            Err(StoreError::TransactionConditionFailed { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(JobError::Retryable(format!("order {order_id} kept changing while the split saved its progress")))
}

/// Asks Stripe for a pending refund and settles it: for the refunds of a large whole-order
/// refund, and for a refund Stripe did not answer. Retried (same idempotency key) until Stripe
/// answers; the dead-letter queue keeps what never got an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub order_id: String,
    pub refund_id: String,
}

impl Job for RefundRequest {
    const TYPE: &'static str = "refund_request";

    fn idempotency_key(&self) -> String {
        self.refund_id.clone()
    }
}

pub struct RefundRequestHandler;

impl JobHandler for RefundRequestHandler {
    type Job = RefundRequest;

    async fn handle(&self, ctx: &JobCtx, job: RefundRequest) -> Result<serde_json::Value, JobError> {
        use super::model::RefundStatus;
        use crate::integrations::stripe::StripeError;
        let repo = OrderRepo::new(&ctx.app.table, &ctx.scope);
        let refund = repo
            .refund(&job.order_id, &job.refund_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("refund {} not found", job.refund_id)))?;
        if refund.value.status != RefundStatus::Pending || refund.value.stripe_refund_id.is_some() {
            // Settled, or Stripe has it and its webhook will settle it.
            return Ok(json!({ "refund": refund.value.id, "status": refund.value.status }));
        }
        let order = repo
            .order(&job.order_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("order {} not found", job.order_id)))?;
        let asked = refund.value.clone();
        let known = KnownRefund { refund: Some(refund), units: None, order: Some(order.clone()) };
        match request_stripe_refund(&ctx.app, &ctx.scope, &order.value, &asked, known).await {
            Ok(settled) => Ok(json!({ "refund": settled.id, "status": settled.status })),
            // Refused: settled as failed (the refund and its units were released).
            Err(StripeError::Rejected { .. } | StripeError::Unauthorized) => {
                let settled = repo.refund(&job.order_id, &job.refund_id).await?.map(|r| r.value.status);
                Ok(json!({ "refund": asked.id, "status": settled }))
            }
            Err(StripeError::Unavailable(why)) => Err(JobError::Retryable(why)),
        }
    }
}

pub const REFUND_REQUEST: WorkerDef = WorkerDef {
    job_type: RefundRequest::TYPE,
    function: "refund-request",
    run: |app, event, deadline_ms| {
        Box::pin(
            async move { process_batch(&app, std::sync::Arc::new(RefundRequestHandler), event, deadline_ms).await },
        )
    },
};
