//! Use cases of the notifications domain.

use std::collections::BTreeMap;

use super::dto::{JobAccepted, SmtpTestRequest};
use super::jobs::EmailDispatch;
use super::model::EmailTemplate;
use crate::app::App;
use crate::error::{ApiError, FieldError};
use crate::jobs::Job;
use crate::tenancy::TenantScope;
use crate::vendors::model::check_email;
use crate::vendors::service::{get_profile, get_smtp};

/// Queues a test message through the vendor's SMTP settings.
pub async fn send_smtp_test(app: &App, scope: &TenantScope, req: SmtpTestRequest) -> Result<JobAccepted, ApiError> {
    let mut errors = Vec::new();
    check_email(&req.to_email, "/to_email", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let smtp = get_smtp(app, scope).await?.value;
    if smtp.password.is_none() {
        return Err(ApiError::validation(vec![FieldError::new("", "set the SMTP password before testing")]));
    }
    let vendor = get_profile(app, scope).await?.value;
    let job = EmailDispatch {
        // Every test is its own message.
        message_key: format!("smtp-test-{}", crate::store::ids::new_id()),
        to_email: req.to_email,
        to_name: None,
        template: EmailTemplate::SmtpTest,
        vars: BTreeMap::from([("vendor_name".to_owned(), vendor.name), ("smtp_host".to_owned(), smtp.host)]),
        inline_images: Vec::new(),
    };
    let job_id = app.jobs.enqueue(scope, &job).await?;
    Ok(JobAccepted { job_id, job_type: EmailDispatch::TYPE.to_owned() })
}
