//! The message body every queue carries.

use serde::{Deserialize, Serialize};

use super::Job;
use crate::tenancy::TenantScope;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub job_id: String,
    #[serde(rename = "type")]
    pub job_type: String,
    pub vendor_id: String,
    pub idempotency_key: String,
    /// 1 when first enqueued; a redrive by the operations CLI keeps the envelope as it was.
    pub attempt: u32,
    /// RFC 3339.
    pub enqueued_at: String,
    pub payload: serde_json::Value,
}

impl Envelope {
    pub fn new<J: Job>(scope: &TenantScope, job: &J) -> Result<Self, serde_json::Error> {
        Ok(Self {
            job_id: crate::store::ids::new_id(),
            job_type: J::TYPE.to_owned(),
            vendor_id: scope.vendor_id().to_string(),
            idempotency_key: job.idempotency_key(),
            attempt: 1,
            enqueued_at: crate::vendors::service::now_rfc3339(),
            payload: serde_json::to_value(job)?,
        })
    }
}
