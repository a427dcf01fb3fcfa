//! Xero jobs: a closed cycle's invoice, the payment that settles it, and reading an invoice's
//! state after Xero's webhook.

use serde::{Deserialize, Serialize};

use crate::jobs::registry::WorkerDef;
use crate::jobs::worker::process_batch;
use crate::jobs::{Job, JobCtx, JobError, JobHandler};

/// Invoice a statement's fees in one currency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct XeroInvoice {
    pub cycle_id: String,
    pub currency: String,
}

impl Job for XeroInvoice {
    const TYPE: &'static str = "xero_invoice";

    fn idempotency_key(&self) -> String {
        format!("{}:{}", self.cycle_id, self.currency)
    }
}

pub struct XeroInvoiceHandler;

impl JobHandler for XeroInvoiceHandler {
    type Job = XeroInvoice;

    async fn handle(&self, ctx: &JobCtx, job: XeroInvoice) -> Result<serde_json::Value, JobError> {
        super::service::invoice_cycle(&ctx.app, &ctx.scope, &job.cycle_id, &job.currency).await
    }
}

pub const XERO_INVOICE: WorkerDef = WorkerDef {
    job_type: XeroInvoice::TYPE,
    function: "xero-invoice",
    run: |app, event, deadline_ms| {
        Box::pin(async move { process_batch(&app, std::sync::Arc::new(XeroInvoiceHandler), event, deadline_ms).await })
    },
};

/// Record a cycle's payout as the payment of its fee invoice in one currency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct XeroPayment {
    pub cycle_id: String,
    pub currency: String,
}

impl Job for XeroPayment {
    const TYPE: &'static str = "xero_payment";

    fn idempotency_key(&self) -> String {
        format!("{}:{}", self.cycle_id, self.currency)
    }
}

pub struct XeroPaymentHandler;

impl JobHandler for XeroPaymentHandler {
    type Job = XeroPayment;

    async fn handle(&self, ctx: &JobCtx, job: XeroPayment) -> Result<serde_json::Value, JobError> {
        let outcome = super::service::record_payment(&ctx.app, &ctx.scope, &job.cycle_id, &job.currency).await?;
        // Not yet invoiced: the invoice job queues this one again (under its own run), and
        // this key must stay free for it.
        if outcome.get("waiting").is_some() {
            return Err(JobError::Retryable("the invoice is not created yet".into()));
        }
        Ok(outcome)
    }
}

pub const XERO_PAYMENT: WorkerDef = WorkerDef {
    job_type: XeroPayment::TYPE,
    function: "xero-payment",
    run: |app, event, deadline_ms| {
        Box::pin(async move { process_batch(&app, std::sync::Arc::new(XeroPaymentHandler), event, deadline_ms).await })
    },
};

/// Read an invoice's state from Xero after an event about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct XeroInvoiceSync {
    pub invoice_id: String,
    /// Xero's `eventDateUtc`: one run per event, a redelivered event runs nothing.
    pub event_date: String,
}

impl Job for XeroInvoiceSync {
    const TYPE: &'static str = "xero_invoice_sync";

    fn idempotency_key(&self) -> String {
        format!("{}:{}", self.invoice_id, self.event_date)
    }
}

pub struct XeroInvoiceSyncHandler;

impl JobHandler for XeroInvoiceSyncHandler {
    type Job = XeroInvoiceSync;

    async fn handle(&self, ctx: &JobCtx, job: XeroInvoiceSync) -> Result<serde_json::Value, JobError> {
        super::service::sync_invoice(&ctx.app, &ctx.scope, &job.invoice_id).await
    }
}

pub const XERO_INVOICE_SYNC: WorkerDef = WorkerDef {
    job_type: XeroInvoiceSync::TYPE,
    function: "xero-invoice-sync",
    run: |app, event, deadline_ms| {
        Box::pin(
            async move { process_batch(&app, std::sync::Arc::new(XeroInvoiceSyncHandler), event, deadline_ms).await },
        )
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::sample_payload as payload;

    /// The sample events of the three workers carry payloads their jobs accept.
    #[test]
    fn sample_events_decode_as_their_jobs() {
        let invoice: XeroInvoice =
            serde_json::from_value(payload(include_str!("../../../events/xero-invoice.json"))).unwrap();
        assert_eq!(invoice.currency, "EUR");
        serde_json::from_value::<XeroPayment>(payload(include_str!("../../../events/xero-payment.json"))).unwrap();
        serde_json::from_value::<XeroInvoiceSync>(payload(include_str!("../../../events/xero-invoice-sync.json")))
            .unwrap();
    }
}
