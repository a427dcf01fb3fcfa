//! The email dispatch job: render a template, send it through the vendor's SMTP server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::model::EmailTemplate;
use crate::integrations::smtp::{InlineImageData, Outgoing, SmtpClient, SmtpError};
use crate::jobs::registry::WorkerDef;
use crate::jobs::worker::process_batch;
use crate::jobs::{Job, JobCtx, JobError, JobHandler};
use crate::vendors::model::{SmtpCredentials, SmtpSettings};
use crate::vendors::repo::VendorRepo;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailDispatch {
    /// The caller's id for this message: the idempotency key and the Message-ID, so the same
    /// message enqueued twice is sent once.
    pub message_key: String,
    pub to_email: String,
    pub to_name: Option<String>,
    pub template: EmailTemplate,
    pub vars: BTreeMap<String, String>,
    /// Images the HTML shows inline, read from the assets bucket when the message is sent
    /// (too large for a queue message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inline_images: Vec<InlineImage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineImage {
    pub content_id: String,
    pub content_type: String,
    /// Key in the assets bucket, under the vendor's prefix.
    pub key: String,
}

impl Job for EmailDispatch {
    const TYPE: &'static str = "email_dispatch";

    fn idempotency_key(&self) -> String {
        self.message_key.clone()
    }
}

pub struct EmailDispatchHandler;

impl From<SmtpError> for JobError {
    fn from(err: SmtpError) -> Self {
        match err {
            SmtpError::Transient(why) => JobError::Retryable(why),
            SmtpError::Permanent(why) => JobError::Permanent(why),
        }
    }
}

impl JobHandler for EmailDispatchHandler {
    type Job = EmailDispatch;

    async fn handle(&self, ctx: &JobCtx, job: EmailDispatch) -> Result<serde_json::Value, JobError> {
        let rendered = job.template.render(&job.vars).map_err(|e| JobError::Permanent(e.to_string()))?;
        let settings = VendorRepo::new(&ctx.app.table, &ctx.scope)
            .config::<SmtpSettings>()
            .await
            .map_err(|e| JobError::Retryable(e.to_string()))?
            .ok_or_else(|| JobError::Permanent("the vendor has no SMTP settings".to_owned()))?
            .value;
        let password_ref = settings
            .password
            .as_ref()
            .ok_or_else(|| JobError::Permanent("the vendor's SMTP password is not set".to_owned()))?;
        let credentials = ctx
            .app
            .secrets
            .get::<SmtpCredentials>(&ctx.scope, password_ref)
            .await
            .map_err(|e| JobError::Retryable(e.to_string()))?;
        let domain = settings.from_email.rsplit('@').next().unwrap_or("bestow.local").to_owned();
        let message_id = format!("<{}.{}@{domain}>", job.message_key, ctx.scope.vendor_id());
        let inline_images = fetch_images(ctx, &job.inline_images).await?;
        let client = SmtpClient::new(&settings, &credentials.password)?;
        client
            .send(&Outgoing {
                to_email: &job.to_email,
                to_name: job.to_name.as_deref(),
                subject: &rendered.subject,
                text: &rendered.text,
                html: &rendered.html,
                message_id: &message_id,
                inline_images: &inline_images,
            })
            .await?;
        Ok(json!({ "sent": true, "message_id": message_id, "template": job.template }))
    }
}

async fn fetch_images(ctx: &JobCtx, images: &[InlineImage]) -> Result<Vec<InlineImageData>, JobError> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let bucket = ctx
        .app
        .config
        .assets_bucket
        .as_deref()
        .ok_or_else(|| JobError::Permanent("BESTOW_ASSETS_BUCKET is not set for inline images".into()))?;
    let prefix = crate::store::keys::vendor_object_prefix(&ctx.scope);
    let mut out = Vec::with_capacity(images.len());
    for image in images {
        // Only the vendor's own assets: a message can never attach another tenant's file.
        if !image.key.starts_with(&prefix) {
            return Err(JobError::Permanent(format!("inline image {} is not under the vendor's prefix", image.key)));
        }
        let object = ctx.app.s3().get_object().bucket(bucket).key(&image.key).send().await.map_err(|e| {
            JobError::Retryable(format!("reading {}: {}", image.key, aws_sdk_s3::error::DisplayErrorContext(e)))
        })?;
        let bytes = object.body.collect().await.map_err(|e| JobError::Retryable(e.to_string()))?.into_bytes().to_vec();
        out.push(InlineImageData {
            content_id: image.content_id.clone(),
            content_type: image.content_type.clone(),
            bytes,
        });
    }
    Ok(out)
}

pub const EMAIL_DISPATCH: WorkerDef = WorkerDef {
    job_type: EmailDispatch::TYPE,
    function: "email-dispatch",
    run: |app, event, deadline_ms| {
        Box::pin(
            async move { process_batch(&app, std::sync::Arc::new(EmailDispatchHandler), event, deadline_ms).await },
        )
    },
};
