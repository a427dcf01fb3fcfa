//! Billing use cases: payout terms, closing a cycle into its statement, payouts, and the
//! reports over statements.

use super::dto::*;
use super::model::*;
use super::repo::{BillingRepo, PlatformStatements};
use crate::app::App;
use crate::error::ApiError;
use crate::jobs::JobError;
use crate::ledger::model::{EntryKind, LedgerEntry};
use crate::ledger::repo::LedgerRepo;
use crate::store::{Cursor, StoreError, keys};
use crate::tenancy::{PlatformScope, TenantScope};
use crate::vendors::repo::VendorRepo;
use crate::vendors::service::now_rfc3339;

/// Ledger entries per fee transaction: each is two items (entry and claim) of DynamoDB's 100.
const FEES_PER_TRANSACTION: usize = 50;
/// How long a statement download link works.
const DOWNLOAD_SECONDS: u64 = 900;

fn vendor_not_found(scope: &TenantScope) -> ApiError {
    ApiError::NotFound(format!("vendor {} not found", scope.vendor_id()))
}

// ---------------------------------------------------------------- terms

pub async fn terms(app: &App, scope: &TenantScope) -> Result<PayoutTerms, StoreError> {
    Ok(VendorRepo::new(&app.table, scope).config::<PayoutTerms>().await?.map(|t| t.value).unwrap_or_default())
}

pub async fn put_terms(app: &App, scope: &TenantScope, terms: PayoutTerms) -> Result<PayoutTerms, ApiError> {
    ApiError::reject_if_any(terms.validate())?;
    let repo = VendorRepo::new(&app.table, scope);
    repo.profile().await?.ok_or_else(|| vendor_not_found(scope))?;
    let current = repo.config::<PayoutTerms>().await?;
    repo.put_config(&terms, current.map(|c| c.version)).await.map_err(|e| match e {
        StoreError::ConditionFailed => ApiError::Conflict("the terms changed meanwhile; read them again".into()),
        other => other.into(),
    })?;
    Ok(terms)
}

// ---------------------------------------------------------------- closing a cycle

#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// Not a cycle of this vendor (malformed id, before the vendor existed).
    #[error("{0}")]
    Invalid(String),
    /// A cycle that cannot be closed yet.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Storage(String),
}

impl From<CloseError> for JobError {
    fn from(err: CloseError) -> Self {
        match err {
            CloseError::Invalid(why) | CloseError::Refused(why) => JobError::Permanent(why),
            other => JobError::Retryable(other.to_string()),
        }
    }
}

impl From<CloseError> for ApiError {
    fn from(err: CloseError) -> Self {
        match err {
            CloseError::Invalid(why) => ApiError::validation(vec![crate::error::FieldError::new("/cycle_id", why)]),
            CloseError::Refused(why) => ApiError::Conflict(why),
            CloseError::Store(e) => e.into(),
            CloseError::Storage(e) => ApiError::internal(e),
        }
    }
}

/// Closes the vendor's cycle `cycle_id`: charges the platform's fees of its paid orders into
/// the ledger (once each), builds the statement from the ledger, stores it as JSON and PDF
/// under the vendor's prefix, records it, and queues its Xero invoices. Closing a cycle
/// again returns the statement recorded the first time.
pub async fn close_cycle(
    app: &App,
    scope: &TenantScope,
    cycle_id: &str,
    now: time::OffsetDateTime,
) -> Result<StatementRecord, CloseError> {
    let billing = BillingRepo::new(&app.table, scope);
    if let Some(existing) = billing.statement(cycle_id).await? {
        queue_invoices(app, scope, &existing.value).await?;
        return Ok(existing.value);
    }
    let vendor = VendorRepo::new(&app.table, scope)
        .profile()
        .await?
        .ok_or_else(|| CloseError::Invalid(format!("vendor {} not found", scope.vendor_id())))?
        .value;
    let terms = terms(app, scope).await?;
    let mut cycle = Cycle::parse(terms.cycle, cycle_id, &vendor.timezone).map_err(|e| match e {
        CycleError::Id(_) => CloseError::Invalid(e.to_string()),
        other => CloseError::Storage(format!("the vendor's time zone: {other}")),
    })?;
    let created = time::OffsetDateTime::parse(&vendor.created_at, &time::format_description::well_known::Rfc3339)
        .map_err(|e| CloseError::Storage(format!("the vendor's creation time: {e}")))?;
    if cycle.end <= created {
        return Err(CloseError::Invalid(format!("cycle {} ended before the vendor joined", cycle.id)));
    }
    if cycle.end + SETTLE > now {
        return Err(CloseError::Refused(format!(
            "cycle {} ends at {} and closes {} minutes later: it is not over",
            cycle.id,
            rfc3339(cycle.end),
            SETTLE.whole_minutes()
        )));
    }
    // Cycles chain: one starts where the vendor's last statement ended, so a change of time
    // zone or of cycle kind (or a cycle the schedule missed) can neither count an entry twice
    // nor leave one out.
    let previous = billing.latest_statement().await?;
    let previous_end = previous
        .as_ref()
        .and_then(|p| time::OffsetDateTime::parse(&p.period_end, &time::format_description::well_known::Rfc3339).ok());
    if let Some(previous_end) = previous_end {
        if previous_end >= cycle.end {
            return Err(CloseError::Invalid(format!(
                "cycle {} is covered already: the vendor's statements run to {}",
                cycle.id,
                rfc3339(previous_end)
            )));
        }
        cycle.start = previous_end;
    }
    let entries = charge_fees(app, scope, &cycle, &terms).await?;
    // A negative net (more refunded than sold) is owed by the vendor: set off against this
    // cycle rather than forgotten. Nothing is paid out on a negative net, so it is still owed.
    let carried_in: std::collections::BTreeMap<String, i64> = previous
        .iter()
        .flat_map(|p| p.currencies.iter())
        .filter(|c| c.net_payable_minor < 0)
        .map(|c| (c.currency.clone(), c.net_payable_minor))
        .collect();
    let statement = Statement::build(&vendor, &cycle, &terms, entries, &carried_in).map_err(CloseError::Storage)?;

    let bucket = app
        .config
        .documents_bucket
        .clone()
        .ok_or_else(|| CloseError::Storage("BESTOW_DOCUMENTS_BUCKET is not set".into()))?;
    let base = format!("{}statements/{}", keys::vendor_object_prefix(scope), cycle.id);
    let (json_key, pdf_key) = (format!("{base}.json"), format!("{base}.pdf"));
    let json = serde_json::to_vec_pretty(&statement).map_err(|e| CloseError::Storage(e.to_string()))?;
    let pdf = render_statement(&statement);
    // The content is a function of the ledger alone, so a retry rewrites the same bytes.
    for (key, content_type, body) in [(&json_key, "application/json", json), (&pdf_key, "application/pdf", pdf)] {
        let file = key.rsplit('/').next().unwrap_or(key);
        app.s3()
            .put_object()
            .bucket(&bucket)
            .key(key)
            .content_type(content_type)
            .content_disposition(format!("attachment; filename=\"statement-{}-{file}\"", scope.vendor_id()))
            .body(body.into())
            .send()
            .await
            .map_err(|e| {
                CloseError::Storage(format!("storing the statement: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
            })?;
    }
    let closed_at = now_rfc3339();
    let record = StatementRecord {
        owner_vendor: scope.vendor_id().to_string(),
        cycle_id: cycle.id.clone(),
        cycle: cycle.kind,
        period_start: statement.period_start.clone(),
        period_end: statement.period_end.clone(),
        invoices: statement
            .currencies
            .iter()
            .filter(|c| c.fees_minor < 0)
            .map(|c| XeroInvoiceRef {
                currency: c.currency.clone(),
                amount_minor: -c.fees_minor,
                state: InvoiceState::Pending,
                invoice_id: None,
                invoice_number: None,
                xero_status: None,
                amount_due_minor: None,
                attached: false,
                payment_recorded: false,
                updated_at: closed_at.clone(),
            })
            .collect(),
        currencies: statement.currencies,
        json_key,
        pdf_key,
        payouts: Vec::new(),
        closed_at,
    };
    let record = match billing.save_statement(&record, None).await {
        Ok(_) => record,
        // Closed concurrently: that one is the statement.
        Err(StoreError::ConditionFailed) => {
            billing
                .statement(cycle_id)
                .await?
                .ok_or_else(|| CloseError::Storage("the statement vanished".into()))?
                .value
        }
        Err(other) => return Err(other.into()),
    };
    queue_invoices(app, scope, &record).await?;
    Ok(record)
}

/// The cycle's ledger entries, with the platform's fees of each paid order added where they
/// are missing. Fees are dated with their order, so they fall in the same cycle; their claims
/// make a second close (or a concurrent one) charge nothing twice.
async fn charge_fees(
    app: &App,
    scope: &TenantScope,
    cycle: &Cycle,
    terms: &PayoutTerms,
) -> Result<Vec<LedgerEntry>, CloseError> {
    let ledger = LedgerRepo::new(&app.table, scope);
    for _ in 0..3 {
        let mut entries = ledger.entries_between(cycle.start, cycle.end).await?;
        let charged: std::collections::HashSet<&str> =
            entries.iter().filter(|e| e.kind == EntryKind::PlatformFee).map(|e| e.source_id.as_str()).collect();
        let mut missing = Vec::new();
        for order in entries.iter().filter(|e| e.kind == EntryKind::OrderPaid) {
            for (fee, amount) in terms.fees_of(order) {
                let source = fee_source(&order.source_id, fee);
                if charged.contains(source.as_str()) {
                    continue;
                }
                let entry = LedgerEntry::new(
                    EntryKind::PlatformFee,
                    amount,
                    &order.currency,
                    &source,
                    order.order_id.as_deref(),
                    &order.occurred_at,
                    format!("platform fee ({}) of order {}", fee.as_str(), order.source_id),
                )
                .map_err(|e| CloseError::Storage(e.to_string()))?
                .with_fee_type(fee);
                missing.push(entry);
            }
        }
        if missing.is_empty() {
            return Ok(entries);
        }
        let mut conflicted = false;
        for chunk in missing.chunks(FEES_PER_TRANSACTION) {
            let mut writes = Vec::with_capacity(chunk.len() * 2);
            for entry in chunk {
                writes.extend(ledger.transact_record(entry)?);
            }
            match app.table.transact(writes).await {
                Ok(()) => {}
                // Another close charged some of them: read the ledger again.
                Err(StoreError::TransactionConditionFailed { .. }) => conflicted = true,
                Err(other) => return Err(other.into()),
            }
        }
        if !conflicted {
            entries.extend(missing);
            return Ok(entries);
        }
    }
    Err(CloseError::Storage("the cycle's fees kept changing under a concurrent close".into()))
}

/// One `xero_invoice` job per currency still waiting for its invoice (jobs are idempotent:
/// queueing again after a crash runs nothing twice).
async fn queue_invoices(app: &App, scope: &TenantScope, record: &StatementRecord) -> Result<(), CloseError> {
    let jobs: Vec<_> = record
        .invoices
        .iter()
        .filter(|i| i.state == InvoiceState::Pending)
        .map(|i| crate::xero::jobs::XeroInvoice { cycle_id: record.cycle_id.clone(), currency: i.currency.clone() })
        .collect();
    if !jobs.is_empty() {
        app.jobs.enqueue_batch(scope, &jobs).await.map_err(|e| CloseError::Storage(e.to_string()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- payouts

/// Records that the platform paid the vendor a cycle's net payable in one currency: a
/// `payout` ledger entry and the payout on the statement, in one transaction; then the fee
/// invoice is settled in Xero by a job. Once per (cycle, currency): the same payout again (a
/// retried request) answers the statement and makes sure the payment job is queued; another
/// payout is a conflict. Returns whether this call recorded it.
pub async fn record_payout(
    app: &App,
    scope: &TenantScope,
    cycle_id: &str,
    req: PayoutRequest,
) -> Result<(StatementView, bool), ApiError> {
    req.validate()?;
    let billing = BillingRepo::new(&app.table, scope);
    for _ in 0..3 {
        let current = billing
            .statement(cycle_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no statement for cycle {cycle_id}")))?;
        let mut record = current.value;
        if let Some(done) = record.payouts.iter().find(|p| p.currency == req.currency) {
            if done.reference != req.reference {
                return Err(ApiError::Conflict(format!(
                    "cycle {cycle_id} was already paid out in {} (reference {})",
                    req.currency, done.reference
                )));
            }
            queue_payment(app, scope, &record, &req.currency).await?;
            return Ok((statement_view(app, record).await?, false));
        }
        let figures = record.currencies.iter().find(|c| c.currency == req.currency).ok_or_else(|| {
            ApiError::validation(vec![crate::error::FieldError::new(
                "/currency",
                format!("cycle {cycle_id} has no {} figures", req.currency),
            )])
        })?;
        let amount = figures.net_payable_minor;
        if amount <= 0 {
            return Err(ApiError::Conflict(format!(
                "cycle {cycle_id} owes the vendor nothing in {} (net payable {})",
                req.currency,
                decimal(amount, &req.currency)
            )));
        }
        let paid_at = now_rfc3339();
        let entry = LedgerEntry::new(
            EntryKind::Payout,
            amount,
            &req.currency,
            &format!("{cycle_id}:{}", req.currency),
            None,
            &paid_at,
            format!("payout of cycle {cycle_id} ({})", req.reference),
        )
        .map_err(ApiError::internal)?;
        record.payouts.push(PayoutRecord {
            currency: req.currency.clone(),
            amount_minor: amount,
            reference: req.reference.clone(),
            paid_at,
        });
        let mut writes = billing.statement_writes(&record, Some(current.version))?;
        writes.extend(LedgerRepo::new(&app.table, scope).transact_record(&entry)?);
        match app.table.transact(writes).await {
            Ok(()) => {}
            Err(StoreError::TransactionConditionFailed { failed }) if failed.contains(&0) => continue,
            Err(StoreError::TransactionConditionFailed { .. }) => {
                return Err(ApiError::Conflict(format!("cycle {cycle_id} was already paid out in {}", req.currency)));
            }
            Err(other) => return Err(other.into()),
        }
        queue_payment(app, scope, &record, &req.currency).await?;
        return Ok((statement_view(app, record).await?, true));
    }
    Err(ApiError::Conflict("the statement kept changing; try again".into()))
}

/// The job that records a payout's payment against the cycle's fee invoice (idempotent).
async fn queue_payment(
    app: &App,
    scope: &TenantScope,
    record: &StatementRecord,
    currency: &str,
) -> Result<(), ApiError> {
    if record.invoices.iter().any(|i| i.currency == currency && !i.payment_recorded) {
        let job = crate::xero::jobs::XeroPayment { cycle_id: record.cycle_id.clone(), currency: currency.to_owned() };
        app.jobs.enqueue(scope, &job).await.map_err(ApiError::internal)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- reports

pub async fn statement_view(app: &App, record: StatementRecord) -> Result<StatementView, ApiError> {
    let (json_url, pdf_url) = match &app.config.documents_bucket {
        Some(bucket) => {
            (Some(presign(app, bucket, &record.json_key).await?), Some(presign(app, bucket, &record.pdf_key).await?))
        }
        None => (None, None),
    };
    Ok(StatementView { json_url, pdf_url, expires_in_seconds: DOWNLOAD_SECONDS, statement: record })
}

async fn presign(app: &App, bucket: &str, key: &str) -> Result<String, ApiError> {
    let presigning =
        aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(DOWNLOAD_SECONDS))
            .map_err(ApiError::internal)?;
    let presigned =
        app.s3().get_object().bucket(bucket).key(key).presigned(presigning).await.map_err(ApiError::internal)?;
    Ok(presigned.uri().to_owned())
}

pub async fn get_statement(app: &App, scope: &TenantScope, cycle_id: &str) -> Result<StatementView, ApiError> {
    let record = BillingRepo::new(&app.table, scope)
        .statement(cycle_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no statement for cycle {cycle_id}")))?;
    statement_view(app, record.value).await
}

pub async fn list_statements(
    app: &App,
    scope: &TenantScope,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<StatementList, ApiError> {
    let (items, next) = BillingRepo::new(&app.table, scope).statements(limit, cursor.as_ref()).await?;
    Ok(StatementList { items, next_cursor: next.map(|c| c.encode()) })
}

/// Every vendor's statements with their Xero invoice state, latest period first.
pub async fn list_all_statements(
    app: &App,
    scope: &PlatformScope,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<StatementList, ApiError> {
    let (items, next) = PlatformStatements::new(&app.table, scope).list(limit, cursor.as_ref()).await?;
    Ok(StatementList { items, next_cursor: next.map(|c| c.encode()) })
}
