//! The one error type of the HTTP surface, rendered as RFC 9457 problem+json.
//!
//! Every variant has a stable `type` URI (`https://bestow.dev/problems/<slug>`): clients and
//! the OpenAPI document rely on it. Internal errors keep their cause for the log only.

use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_TYPE_BASE: &str = "https://bestow.dev/problems/";

/// One field that failed validation, named by its JSON pointer (`/zones/0/countries/1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("validation failed: {detail}")]
    Validation { detail: String, errors: Vec<FieldError> },
    #[error("authentication required: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The vendor's plan lapsed (payment failed past the grace period, or it ended).
    #[error("payment required: {0}")]
    PaymentRequired(String),
    /// Creating this would go past the vendor's plan.
    #[error("plan limit: {0}")]
    PlanLimit(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("precondition required: {0}")]
    PreconditionRequired(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// A third party (Stripe) refused or failed; the detail says what the caller can do.
    #[error("upstream: {0}")]
    Upstream(String),
    /// Our fault or a dependency's: logged with its cause, answered without it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The RFC 9457 body. `errors` is our extension member for field-level validation detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.pointer, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self::Validation { detail, errors }
    }

    /// `Ok` when `errors` is empty, else the 422 listing them: validation collects every
    /// problem first, then refuses once.
    pub fn reject_if_any(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() { Ok(()) } else { Err(Self::validation(errors)) }
    }

    /// A write whose `If-Match` no longer holds.
    pub fn stale(what: &str) -> Self {
        Self::PreconditionFailed(format!("the {what} changed since you read it; read it again"))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::PaymentRequired(_) => 402,
            Self::PlanLimit(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::PreconditionFailed(_) => 412,
            Self::PayloadTooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Validation { .. } => 422,
            Self::PreconditionRequired(_) => 428,
            Self::Internal(_) => 500,
            Self::Upstream(_) => 502,
        }
    }

    /// The stable slug of the `type` URI.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "malformed-request",
            Self::Validation { .. } => "validation-failed",
            Self::Unauthorized(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::PaymentRequired(_) => "payment-required",
            Self::PlanLimit(_) => "plan-limit-reached",
            Self::NotFound(_) => "not-found",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed(_) => "precondition-failed",
            Self::PreconditionRequired(_) => "precondition-required",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::Internal(_) => "internal",
            Self::Upstream(_) => "upstream-failed",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "Malformed request",
            Self::Validation { .. } => "Validation failed",
            Self::Unauthorized(_) => "Authentication required",
            Self::Forbidden(_) => "Forbidden",
            Self::PaymentRequired(_) => "Payment required",
            Self::PlanLimit(_) => "Plan limit reached",
            Self::NotFound(_) => "Not found",
            Self::Conflict(_) => "Conflict",
            Self::PreconditionFailed(_) => "Precondition failed",
            Self::PreconditionRequired(_) => "Precondition required",
            Self::PayloadTooLarge(_) => "Payload too large",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::Internal(_) => "Internal error",
            Self::Upstream(_) => "A payment provider failed",
        }
    }

    pub fn to_problem(&self, instance: Option<String>) -> Problem {
        let (detail, errors) = match self {
            Self::Validation { detail, errors } => (detail.clone(), errors.clone()),
            // The cause of an internal error is for the log, never for the client.
            Self::Internal(_) => ("the request could not be completed; it has been logged".to_owned(), Vec::new()),
            Self::BadRequest(d)
            | Self::Unauthorized(d)
            | Self::Forbidden(d)
            | Self::PaymentRequired(d)
            | Self::PlanLimit(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::PreconditionFailed(d)
            | Self::PreconditionRequired(d)
            | Self::PayloadTooLarge(d)
            | Self::UnsupportedMediaType(d)
            | Self::Upstream(d) => (d.clone(), Vec::new()),
        };
        Problem {
            type_uri: format!("{PROBLEM_TYPE_BASE}{}", self.slug()),
            title: self.title().to_owned(),
            status: self.status(),
            detail,
            instance,
            errors,
        }
    }
}
