//! API shapes of the notifications domain.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpTestRequest {
    /// Where the test message goes.
    pub to_email: String,
}

/// A job was queued; its effect follows asynchronously.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: String,
    pub job_type: String,
}
