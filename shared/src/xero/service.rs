//! Xero use cases: connecting the platform's organisation, the refresh lease, invoicing a
//! closed cycle, recording its payment, and reading invoice states back.

use std::time::Duration;

use super::dto::*;
use super::model::*;
use super::repo::XeroRepo;
use crate::app::App;
use crate::billing::model::{InvoiceState, StatementRecord};
use crate::billing::repo::{BillingRepo, XeroInvoiceLookup};
use crate::error::ApiError;
use crate::integrations::secrets::Redacted;
use crate::integrations::xero::{self, XeroApp, XeroClient, XeroError, XeroTokens};
use crate::jobs::JobError;
use crate::store::StoreError;
use crate::tenancy::TenantScope;
use crate::vendors::service::now_rfc3339;

const STATE_SECONDS: i64 = 900;
/// An access token this close to expiry is refreshed first.
const EXPIRY_MARGIN_S: i64 = 60;
/// How long a refresh may hold the lease, longer than the token call's own retries (4 tries of
/// at most 10 s with back-off); a holder that died is overtaken after it.
const LEASE_MS: i64 = 120_000;
/// How long a worker waits for another's refresh before giving up for this run.
const LEASE_WAIT: Duration = Duration::from_secs(25);
const LEASE_POLL: Duration = Duration::from_millis(150);

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

// ---------------------------------------------------------------- connecting

fn callback_url(app: &App) -> Result<String, ApiError> {
    app.config.xero_callback_url.clone().ok_or_else(|| ApiError::internal("BESTOW_XERO_CALLBACK_URL is not set"))
}

pub async fn start_connect(app: &App) -> Result<ConnectStarted, ApiError> {
    let redirect = callback_url(app)?;
    let xero_app = app.secrets.platform::<XeroApp>().await?;
    let nonce = crate::store::ids::new_id() + &crate::store::ids::new_id();
    XeroRepo::new(&app.table).put_state(&nonce, &ConnectState { expires_at: now_epoch() + STATE_SECONDS }).await?;
    Ok(ConnectStarted {
        authorize_url: xero::client::authorize_url(&app.config.xero, &xero_app.client_id, &redirect, &nonce),
        expires_in_seconds: STATE_SECONDS as u64,
    })
}

/// Xero's redirect: the state is taken once, the code exchanged, the organisation read from
/// the connections endpoint, the tokens stored (Secrets Manager) and then the connection.
pub async fn complete_connect(app: &App, query: &[(String, String)]) -> Result<ConnectionView, ApiError> {
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let Some(error) = param("error") {
        return Err(ApiError::BadRequest(format!("Xero refused the connection: {error}")));
    }
    let (Some(code), Some(state)) = (param("code"), param("state")) else {
        return Err(ApiError::BadRequest("the redirect lacks code or state".into()));
    };
    let repo = XeroRepo::new(&app.table);
    if repo.take_state(state, now_epoch()).await?.is_none() {
        return Err(ApiError::BadRequest("the state is unknown, used or expired: start connecting again".into()));
    }
    let redirect = callback_url(app)?;
    let xero_app = app.secrets.platform::<XeroApp>().await?;
    let http = app.http();
    let tokens = xero::client::exchange_code(&http, &app.config.xero, &xero_app, code, &redirect)
        .await
        .map_err(|e| ApiError::Upstream(e.to_string()))?
        .into_tokens(now_epoch());
    let organisations = xero::client::connections(&http, &app.config.xero, &tokens.access_token)
        .await
        .map_err(|e| ApiError::Upstream(e.to_string()))?;
    let organisation = organisations
        .into_iter()
        .find(|c| c.tenant_type == "ORGANISATION")
        .ok_or_else(|| ApiError::Upstream("the Xero user connected no organisation".into()))?;
    let at = app.secrets.put_platform(&tokens).await?;
    let previous = repo.connection().await?;
    let expected = previous.as_ref().map(|p| p.version);
    let record = XeroConnectionRecord {
        tenant_id: organisation.tenant_id,
        tenant_name: organisation.tenant_name,
        status: ConnectionStatus::Connected,
        tokens: at,
        access_expires_at: tokens.expires_at,
        generation: previous.as_ref().map_or(1, |p| p.value.generation + 1),
        lease_owner: None,
        lease_until_ms: None,
        connected_at: now_rfc3339(),
        refreshed_at: None,
        refreshes: 0,
        last_error: None,
    };
    repo.save_connection(&record, expected).await.map_err(|e| match e {
        StoreError::ConditionFailed => ApiError::Conflict("the connection changed meanwhile; connect again".into()),
        other => other.into(),
    })?;
    tracing::info!(tenant_id = %record.tenant_id, "xero connected");
    Ok(view(&record))
}

fn view(record: &XeroConnectionRecord) -> ConnectionView {
    let expires =
        time::OffsetDateTime::from_unix_timestamp(record.access_expires_at).ok().map(crate::billing::model::rfc3339);
    ConnectionView {
        status: ConnectionView::status_text(record.status),
        tenant_id: Some(record.tenant_id.clone()),
        tenant_name: record.tenant_name.clone(),
        access_expires_at: expires,
        connected_at: Some(record.connected_at.clone()),
        refreshed_at: record.refreshed_at.clone(),
        refreshes: record.refreshes,
        last_error: record.last_error.clone(),
    }
}

pub async fn connection_view(app: &App) -> Result<ConnectionView, ApiError> {
    Ok(XeroRepo::new(&app.table).connection().await?.map_or_else(ConnectionView::not_connected, |c| view(&c.value)))
}

// ---------------------------------------------------------------- tokens and the lease

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("Xero is not connected: a platform admin connects it with POST /xero/connect")]
    NotConnected,
    #[error("Xero refused the refresh token: a platform admin must connect again")]
    NeedsReconnect,
    #[error("another worker's refresh did not finish in time")]
    LeaseBusy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Secrets(String),
    #[error(transparent)]
    Xero(#[from] XeroError),
}

impl From<AccessError> for JobError {
    fn from(err: AccessError) -> Self {
        match err {
            // The job waits in its queue (and then its dead-letter queue, for a redrive) until
            // an admin connects Xero again: the invoice is not given up.
            AccessError::NotConnected | AccessError::NeedsReconnect => JobError::Retryable(err.to_string()),
            AccessError::Xero(e) if !e.is_retryable() => JobError::Permanent(e.to_string()),
            other => JobError::Retryable(other.to_string()),
        }
    }
}

/// A working access token and the organisation it reaches. Refreshes when the token is about
/// to expire, or when `stale_generation` names the generation Xero just refused. Refreshes are
/// serialised: the first worker takes a lease on the connection item (a conditional write on
/// the version it read), refreshes, stores the new pair in Secrets Manager *before* using it,
/// then records the new version and drops the lease; the others wait and read that version.
/// Two workers refreshing at once therefore make one refresh call, and the rotated refresh
/// token is never lost.
pub async fn access_token(app: &App, stale_generation: Option<u64>) -> Result<(Redacted, String, u64), AccessError> {
    let repo = XeroRepo::new(&app.table);
    let me = crate::store::ids::new_id();
    let started = tokio::time::Instant::now();
    let mut first_seen = None;
    loop {
        let current = repo.connection().await?.ok_or(AccessError::NotConnected)?;
        let record = &current.value;
        if record.status == ConnectionStatus::NeedsReconnect {
            return Err(AccessError::NeedsReconnect);
        }
        let first_seen = *first_seen.get_or_insert(record.generation);
        // A pair another worker refreshed while this one waited is used as it is (however
        // short-lived Xero made it), never refreshed again.
        let refreshed_meanwhile = record.generation > first_seen && record.access_expires_at > now_epoch();
        let fresh = record.access_expires_at > now_epoch() + EXPIRY_MARGIN_S || refreshed_meanwhile;
        if fresh && stale_generation != Some(record.generation) {
            let tokens = read_tokens(app, record).await?;
            return Ok((tokens.access_token, record.tenant_id.clone(), record.generation));
        }
        let leased = record.lease_until_ms.is_some_and(|until| until > now_ms());
        if leased {
            if started.elapsed() > LEASE_WAIT {
                return Err(AccessError::LeaseBusy);
            }
            tokio::time::sleep(LEASE_POLL).await;
            continue;
        }
        let mut mine = record.clone();
        mine.lease_owner = Some(me.clone());
        mine.lease_until_ms = Some(now_ms() + LEASE_MS);
        let leased_version = match repo.save_connection(&mine, Some(current.version)).await {
            Ok(version) => version,
            // Someone else took the lease or refreshed: look again.
            Err(StoreError::ConditionFailed) => continue,
            Err(other) => return Err(other.into()),
        };
        return refresh_under_lease(app, &repo, mine, leased_version).await;
    }
}

async fn read_tokens(app: &App, record: &XeroConnectionRecord) -> Result<XeroTokens, AccessError> {
    app.secrets.platform_at::<XeroTokens>(&record.tokens).await.map_err(|e| AccessError::Secrets(e.to_string()))
}

async fn refresh_under_lease(
    app: &App,
    repo: &XeroRepo<'_>,
    mut record: XeroConnectionRecord,
    leased_version: u64,
) -> Result<(Redacted, String, u64), AccessError> {
    let released = |mut r: XeroConnectionRecord| {
        r.lease_owner = None;
        r.lease_until_ms = None;
        r
    };
    let outcome = async {
        // The newest pair in Secrets Manager, not only the one the record names: a refresher
        // that died after storing its pair but before recording it left the newest refresh
        // token there, and it is the one Xero accepts.
        let (latest, at) =
            app.secrets.platform_latest::<XeroTokens>().await.map_err(|e| AccessError::Secrets(e.to_string()))?;
        if at != record.tokens && latest.expires_at > now_epoch() + EXPIRY_MARGIN_S {
            return Ok::<_, AccessError>((latest, at));
        }
        let xero_app = app.secrets.platform::<XeroApp>().await.map_err(|e| AccessError::Secrets(e.to_string()))?;
        let renewed = xero::client::refresh(&app.http(), &app.config.xero, &xero_app, &latest.refresh_token)
            .await?
            .into_tokens(now_epoch());
        // Stored before use: if this worker dies now, the next one finds it (above).
        let at = app.secrets.put_platform(&renewed).await.map_err(|e| AccessError::Secrets(e.to_string()))?;
        Ok((renewed, at))
    }
    .await;
    match outcome {
        Ok((renewed, at)) => {
            record.tokens = at;
            record.access_expires_at = renewed.expires_at;
            record.generation += 1;
            record.refreshed_at = Some(now_rfc3339());
            record.refreshes += 1;
            record.last_error = None;
            let record = released(record);
            // Only the lease holder writes here; if the lease expired and someone else wrote,
            // our token still works until their refresh, so it is used anyway.
            if let Err(err) = repo.save_connection(&record, Some(leased_version)).await {
                tracing::warn!(error = %err, "could not record the refreshed Xero tokens");
            }
            tracing::info!(generation = record.generation, "xero tokens refreshed");
            Ok((renewed.access_token, record.tenant_id.clone(), record.generation))
        }
        Err(err) => {
            let mut record = released(record);
            record.last_error = Some(err.to_string());
            if matches!(err, AccessError::Xero(XeroError::InvalidGrant(_))) {
                record.status = ConnectionStatus::NeedsReconnect;
            }
            if let Err(store) = repo.save_connection(&record, Some(leased_version)).await {
                tracing::warn!(error = %store, "could not release the Xero lease");
            }
            match err {
                AccessError::Xero(XeroError::InvalidGrant(_)) => Err(AccessError::NeedsReconnect),
                other => Err(other),
            }
        }
    }
}

/// Runs `call` with a client; when Xero refuses the access token (revoked, or replaced by a
/// refresh elsewhere), refreshes once and runs it again.
async fn with_client<T, F, Fut>(app: &App, call: F) -> Result<T, AccessError>
where
    F: Fn(XeroClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, XeroError>>,
{
    let (token, tenant, generation) = access_token(app, None).await?;
    match call(XeroClient::new(app.http(), &app.config.xero, token, &tenant)).await {
        Err(XeroError::Unauthorized) => {
            let (token, tenant, _) = access_token(app, Some(generation)).await?;
            Ok(call(XeroClient::new(app.http(), &app.config.xero, token, &tenant)).await?)
        }
        other => Ok(other?),
    }
}

// ---------------------------------------------------------------- invoices

/// Creates the Xero invoice of a statement's fees in one currency, records it on the statement
/// at once, then attaches the statement's PDF. Xero's `Idempotency-Key` (and a request body
/// that is the same on every try: the invoice is dated with the cycle's end) makes a retry
/// after a lost answer return the first invoice, so it exists exactly once.
pub async fn invoice_cycle(
    app: &App,
    scope: &TenantScope,
    cycle_id: &str,
    currency: &str,
) -> Result<serde_json::Value, JobError> {
    let billing = BillingRepo::new(&app.table, scope);
    let mut record = billing
        .statement(cycle_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("no statement {cycle_id}")))?
        .value;
    let Some(state) = record.invoices.iter().find(|i| i.currency == currency).cloned() else {
        return Ok(serde_json::json!({ "skipped": "no fees to invoice in this currency" }));
    };
    if state.state == InvoiceState::Created && state.attached {
        return Ok(serde_json::json!({ "invoice_id": state.invoice_id, "already": true }));
    }
    let stage = &app.config.stage;
    let mut stats = serde_json::json!({});
    let invoice_id = match state.invoice_id.clone().filter(|_| state.state == InvoiceState::Created) {
        Some(id) => id,
        None => {
            let vendor = crate::vendors::repo::VendorRepo::new(&app.table, scope)
                .profile()
                .await?
                .ok_or_else(|| JobError::Permanent("the vendor is gone".into()))?
                .value;
            let vendor_name = vendor.legal_name.unwrap_or(vendor.name);
            let dated = time::OffsetDateTime::parse(&record.period_end, &time::format_description::well_known::Rfc3339)
                .map_err(|e| JobError::Permanent(format!("the statement's period end: {e}")))?
                .date();
            let invoice = invoice_for(&record, currency, &vendor_name, &app.config.xero_sales_account, dated)
                .ok_or_else(|| JobError::Permanent("the statement has no fees in this currency".into()))?;
            let key = idempotency_key(stage, "invoice", &record, currency);
            let (created, calls) = with_client(app, |client| {
                let (invoice, key) = (&invoice, &key);
                async move {
                    let created = client.create_invoice(invoice, key).await?;
                    Ok((created, client.stats()))
                }
            })
            .await?;
            stats = serde_json::json!(calls);
            billing
                .record_xero_invoice(
                    &created.invoice_id,
                    &XeroInvoiceLookup {
                        owner_vendor: record.owner_vendor.clone(),
                        cycle_id: record.cycle_id.clone(),
                        currency: currency.to_owned(),
                    },
                )
                .await?;
            record = update_invoice(app, scope, cycle_id, currency, |state| {
                state.state = InvoiceState::Created;
                state.invoice_id = Some(created.invoice_id.clone());
                state.invoice_number = created.invoice_number.clone();
                state.xero_status = Some(created.status.clone());
                state.amount_due_minor = created.amount_due.map(|a| xero::client::minor(a, currency));
            })
            .await?;
            created.invoice_id
        }
    };
    let pdf = read_document(app, &record.pdf_key).await?;
    let file_name = format!("statement-{}-{}.pdf", record.owner_vendor, record.cycle_id);
    let attach_key = idempotency_key(stage, "attachment", &record, currency);
    with_client(app, |client| {
        let (invoice_id, file_name, pdf, attach_key) = (&invoice_id, &file_name, &pdf, &attach_key);
        async move { client.attach(invoice_id, file_name, "application/pdf", pdf, attach_key).await }
    })
    .await?;
    let record = update_invoice(app, scope, cycle_id, currency, |state| state.attached = true).await?;
    // A payout recorded before the invoice existed is paid now (read after the last write, so
    // a payout recorded while this ran is seen).
    if record.payouts.iter().any(|p| p.currency == currency) {
        app.jobs
            .enqueue(scope, &super::jobs::XeroPayment { cycle_id: cycle_id.to_owned(), currency: currency.to_owned() })
            .await
            .map_err(|e| JobError::Retryable(e.to_string()))?;
    }
    Ok(serde_json::json!({ "invoice_id": invoice_id, "xero": stats }))
}

async fn read_document(app: &App, key: &str) -> Result<Vec<u8>, JobError> {
    let bucket = app
        .config
        .documents_bucket
        .clone()
        .ok_or_else(|| JobError::Permanent("BESTOW_DOCUMENTS_BUCKET is not set".into()))?;
    let object = app.s3().get_object().bucket(bucket).key(key).send().await.map_err(|e| {
        JobError::Retryable(format!("reading the statement: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
    })?;
    let bytes = object.body.collect().await.map_err(|e| JobError::Retryable(e.to_string()))?;
    Ok(bytes.into_bytes().to_vec())
}

/// Changes one currency's invoice state on the statement (optimistic, retried on conflict).
async fn update_invoice(
    app: &App,
    scope: &TenantScope,
    cycle_id: &str,
    currency: &str,
    change: impl Fn(&mut crate::billing::model::XeroInvoiceRef),
) -> Result<StatementRecord, JobError> {
    let billing = BillingRepo::new(&app.table, scope);
    for _ in 0..5 {
        let current = billing
            .statement(cycle_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("no statement {cycle_id}")))?;
        let mut record = current.value;
        let Some(state) = record.invoice_mut(currency) else {
            return Err(JobError::Permanent(format!("statement {cycle_id} has no {currency} invoice")));
        };
        change(state);
        state.updated_at = now_rfc3339();
        match billing.save_statement(&record, Some(current.version)).await {
            Ok(()) => return Ok(record),
            Err(StoreError::ConditionFailed) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(JobError::Retryable("the statement kept changing".into()))
}

/// Records the payout's payment against the cycle's fee invoice (the fees were kept back from
/// the payout), so the invoice reconciles to paid.
pub async fn record_payment(
    app: &App,
    scope: &TenantScope,
    cycle_id: &str,
    currency: &str,
) -> Result<serde_json::Value, JobError> {
    let record = BillingRepo::new(&app.table, scope)
        .statement(cycle_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("no statement {cycle_id}")))?
        .value;
    let payout = record
        .payouts
        .iter()
        .find(|p| p.currency == currency)
        .ok_or_else(|| JobError::Permanent(format!("cycle {cycle_id} has no {currency} payout")))?;
    let state = record
        .invoices
        .iter()
        .find(|i| i.currency == currency)
        .ok_or_else(|| JobError::Permanent(format!("cycle {cycle_id} has no {currency} invoice")))?;
    if state.payment_recorded {
        return Ok(serde_json::json!({ "already": true }));
    }
    // The invoice job re-queues this one once it has made the invoice.
    let Some(invoice_id) = state.invoice_id.clone() else {
        return Ok(serde_json::json!({ "waiting": "the invoice is not created yet" }));
    };
    let payment = payment_for(
        &invoice_id,
        state.amount_minor,
        currency,
        &payout.reference,
        &app.config.xero_payout_account,
        time::OffsetDateTime::now_utc().date(),
    );
    let key = idempotency_key(&app.config.stage, "payment", &record, currency);
    let invoice = with_client(app, |client| {
        let (payment, key, invoice_id) = (&payment, &key, &invoice_id);
        async move {
            // Paid already (by a try whose answer was lost, after Xero forgot its key): done.
            let before = client.invoice(invoice_id).await?;
            if before.amount_due.is_some_and(|due| xero::client::minor(due, currency) == 0) {
                return Ok(before);
            }
            client.create_payment(payment, key).await?;
            client.invoice(invoice_id).await
        }
    })
    .await?;
    update_invoice(app, scope, cycle_id, currency, |state| {
        state.payment_recorded = true;
        state.xero_status = Some(invoice.status.clone());
        state.amount_due_minor = invoice.amount_due.map(|a| xero::client::minor(a, currency));
    })
    .await?;
    Ok(serde_json::json!({ "invoice_id": invoice_id, "status": invoice.status }))
}

/// Reads an invoice's state from Xero (after its webhook) onto its statement.
pub async fn sync_invoice(app: &App, scope: &TenantScope, invoice_id: &str) -> Result<serde_json::Value, JobError> {
    let lookup = crate::billing::repo::xero_invoice_lookup(&app.table, invoice_id)
        .await?
        .filter(|l| l.owner_vendor == scope.vendor_id().as_str())
        .ok_or_else(|| JobError::Permanent(format!("invoice {invoice_id} is not this vendor's")))?;
    let invoice = with_client(app, |client| async move { client.invoice(invoice_id).await }).await?;
    let currency = lookup.currency.clone();
    update_invoice(app, scope, &lookup.cycle_id, &lookup.currency, |state| {
        state.xero_status = Some(invoice.status.clone());
        state.amount_due_minor = invoice.amount_due.map(|a| xero::client::minor(a, &currency));
    })
    .await?;
    Ok(serde_json::json!({ "invoice_id": invoice_id, "status": invoice.status }))
}

// ---------------------------------------------------------------- webhooks

#[derive(serde::Deserialize)]
struct WebhookPayload {
    #[serde(default)]
    events: Vec<WebhookEvent>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookEvent {
    resource_id: String,
    event_category: String,
    #[serde(default)]
    event_date_utc: String,
    #[serde(default)]
    tenant_id: String,
}

/// Xero's webhook: the signature over the raw body first (a wrong one is 401, as Xero's
/// "intent to receive" check requires); then one `xero_invoice_sync` job per invoice event of
/// an invoice Bestow made. Xero wants an answer within 5 seconds, so nothing else happens here.
pub async fn receive_webhook(app: &App, body: &[u8], signature: Option<&str>) -> Result<WebhookReceipt, ApiError> {
    let xero_app = app.secrets.platform::<XeroApp>().await?;
    if !xero::webhook_is_signed(body, signature, xero_app.webhook_key.expose()) {
        return Err(ApiError::Unauthorized("the x-xero-signature does not match the body".into()));
    }
    let payload: WebhookPayload =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("not a Xero webhook payload: {e}")))?;
    let tenant = XeroRepo::new(&app.table).connection().await?.map(|c| c.value.tenant_id);
    let (mut queued, mut ignored) = (0, 0);
    for event in payload.events {
        let ours = event.event_category == "INVOICE" && tenant.as_deref() == Some(event.tenant_id.as_str());
        let lookup =
            if ours { crate::billing::repo::xero_invoice_lookup(&app.table, &event.resource_id).await? } else { None };
        let Some(lookup) = lookup else {
            ignored += 1;
            continue;
        };
        let scope =
            crate::tenancy::guard::job_scope(&lookup.owner_vendor, "xero-webhook").map_err(ApiError::internal)?;
        let job = super::jobs::XeroInvoiceSync { invoice_id: event.resource_id, event_date: event.event_date_utc };
        app.jobs.enqueue(&scope, &job).await.map_err(ApiError::internal)?;
        queued += 1;
    }
    Ok(WebhookReceipt { queued, ignored })
}
