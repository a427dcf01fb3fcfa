//! Every job type the system runs: the local pollers serve this list, the configuration
//! looks up one queue per entry, and a test holds it equal to `template.yaml`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::app::App;
use crate::http::BoxFuture;

/// A job type's worker: its Lambda function (binary) and how to run one SQS batch.
pub struct WorkerDef {
    pub job_type: &'static str,
    pub function: &'static str,
    /// Runs a batch given the function's deadline (ms since the epoch).
    pub run: fn(App, SqsEvent, i64) -> BoxFuture<SqsBatchResponse>,
}

pub const ALL: &[&WorkerDef] = &[
    &crate::notifications::jobs::EMAIL_DISPATCH,
    &crate::catalog::jobs::VARIANT_GENERATION,
    &crate::bulk::jobs::PRODUCT_IMPORT,
    &crate::bulk::jobs::VARIANT_BULK_UPDATE,
    &crate::orders::jobs::ORDER_SPLIT,
    &crate::fulfillment::jobs::GIFT_DELIVERY,
    &crate::fulfillment::jobs::PACKING_MANIFEST,
    &crate::fulfillment::jobs::GIFT_REMINDERS,
    &crate::orders::jobs::REFUND_REQUEST,
    &crate::shopify::jobs::SHOPIFY_SYNC,
    &crate::shopify::jobs::SHOPIFY_WEBHOOK,
    &crate::shopify::jobs::SHOPIFY_ORDER,
    &crate::billing::jobs::CYCLE_CLOSE,
    &crate::xero::jobs::XERO_INVOICE,
    &crate::xero::jobs::XERO_PAYMENT,
    &crate::xero::jobs::XERO_INVOICE_SYNC,
];

/// Every job type's name, in `ALL`'s order (a test holds them equal). The configuration reads
/// one queue per name from this list rather than from `ALL`, whose `run` pointers would link
/// every worker's code into every function.
pub const JOB_TYPES: [&str; 16] = [
    crate::notifications::jobs::EMAIL_DISPATCH.job_type,
    crate::catalog::jobs::VARIANT_GENERATION.job_type,
    crate::bulk::jobs::PRODUCT_IMPORT.job_type,
    crate::bulk::jobs::VARIANT_BULK_UPDATE.job_type,
    crate::orders::jobs::ORDER_SPLIT.job_type,
    crate::fulfillment::jobs::GIFT_DELIVERY.job_type,
    crate::fulfillment::jobs::PACKING_MANIFEST.job_type,
    crate::fulfillment::jobs::GIFT_REMINDERS.job_type,
    crate::orders::jobs::REFUND_REQUEST.job_type,
    crate::shopify::jobs::SHOPIFY_SYNC.job_type,
    crate::shopify::jobs::SHOPIFY_WEBHOOK.job_type,
    crate::shopify::jobs::SHOPIFY_ORDER.job_type,
    crate::billing::jobs::CYCLE_CLOSE.job_type,
    crate::xero::jobs::XERO_INVOICE.job_type,
    crate::xero::jobs::XERO_PAYMENT.job_type,
    crate::xero::jobs::XERO_INVOICE_SYNC.job_type,
];

/// The environment variable holding a job type's queue URL.
pub fn queue_env_var(job_type: &str) -> String {
    format!("BESTOW_QUEUE_{}", job_type.to_uppercase())
}

pub fn by_function(function: &str) -> Option<&'static WorkerDef> {
    ALL.iter().copied().find(|w| w.function == function)
}

#[cfg(test)]
mod tests {
    #[test]
    fn job_types_name_every_worker_in_order() {
        let from_workers: Vec<&str> = super::ALL.iter().map(|w| w.job_type).collect();
        assert_eq!(from_workers, super::JOB_TYPES);
    }
}
