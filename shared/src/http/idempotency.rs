//! `Idempotency-Key` on POSTs that create: the first request runs and its response is kept
//! (24 h); a repeat with the same body gets that response again (`Idempotent-Replayed:
//! true`), with another body 422, while the first is still running 409. Same store and
//! semantics as the jobs' (`jobs::idempotency`).

use serde::{Deserialize, Serialize};

use super::{ApiResponse, HandlerResult, Input, RouteDef};
use crate::app::App;
use crate::error::ApiError;
use crate::jobs::idempotency::{Claim, IdempotencyStore, Owner, now_ms, payload_hash};

pub const HEADER: &str = "idempotency-key";
/// How long a request may hold its key before a retry may take over (beyond any Lambda
/// timeout in the template).
const IN_PROGRESS_MS: i64 = 30_000;

/// A response as kept for replay.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// The key sent with the request, if any: 1-255 visible ASCII characters.
pub(super) fn key_of(input: &Input) -> Result<Option<String>, ApiError> {
    let Some(key) = input.header(HEADER) else { return Ok(None) };
    let valid = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::BadRequest("Idempotency-Key must be 1-255 visible ASCII characters".to_owned()));
    }
    Ok(Some(key.to_owned()))
}

/// Runs `handler` at most once per (owner, route, user, key).
pub(super) async fn once(
    app: &App,
    owner: Owner<'_>,
    route: &RouteDef,
    user_id: &str,
    key: &str,
    input: &Input,
    handler: impl Future<Output = HandlerResult>,
) -> HandlerResult {
    let store = IdempotencyStore::for_owner(&app.table, owner);
    let kind = format!("http:{}:{user_id}", route.function);
    let hash = payload_hash(&serde_json::json!({ "path": input.path_params_json(), "body": input.body_text() }));
    let claim_id = match store.claim(&kind, key, &hash, now_ms() + IN_PROGRESS_MS, now_ms()).await? {
        Claim::Acquired(claim_id) => claim_id,
        Claim::Completed(stored) => {
            let stored: StoredResponse = serde_json::from_value(stored).map_err(ApiError::internal)?;
            return Ok(ApiResponse::replay(stored));
        }
        Claim::InProgress | Claim::Failed(_) => {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still in progress; retry later".into(),
            ));
        }
        Claim::PayloadMismatch => {
            return Err(ApiError::validation(vec![crate::error::FieldError::new(
                "",
                "this Idempotency-Key was used with a different request",
            )]));
        }
    };
    let result = handler.await;
    let stored = match &result {
        Ok(response) => Some(response.to_stored()),
        // A malformed or invalid request stays so: the same request gets the same answer.
        Err(err) if matches!(err.status(), 400 | 413 | 415 | 422) => Some(ApiResponse::problem(err, None).to_stored()),
        // Answers that depend on state (404 before the settings exist, 409, 5xx): give the
        // key back so a retry runs again.
        Err(_) => None,
    };
    match stored {
        Some(stored) => {
            let value = serde_json::to_value(&stored).map_err(ApiError::internal)?;
            if let Err(err) = store.complete(&kind, key, &claim_id, &value, now_ms()).await {
                tracing::error!(error = %err, "response done but its idempotency record was not completed");
            }
        }
        None => {
            if let Err(err) = store.release(&kind, key, &claim_id).await {
                tracing::error!(error = %err, "could not release the idempotency key");
            }
        }
    }
    result
}
