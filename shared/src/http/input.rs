//! What a handler reads from a request: path and query parameters, `If-Match`, a JSON body.
//! Every malformed part becomes a 4xx problem before anything is written.

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::{Body, Request, RequestExt};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};
use crate::store::Cursor;

/// Configuration bodies are small; anything larger is a mistake or an attack.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct Input {
    pub request_id: String,
    headers: http::HeaderMap,
    path_params: QueryMap,
    query: QueryMap,
    raw_path: String,
    body: Body,
}

impl Input {
    pub fn from_request(req: Request, request_id: String) -> Self {
        let path_params = req.path_parameters();
        let query = req.query_string_parameters();
        let raw_path = Some(req.raw_http_path()).filter(|p| !p.is_empty()).unwrap_or(req.uri().path()).to_owned();
        let (parts, body) = req.into_parts();
        Self { request_id, headers: parts.headers, path_params, query, raw_path, body }
    }

    pub fn path(&self, name: &str) -> Result<&str, ApiError> {
        self.path_params.first(name).ok_or_else(|| ApiError::internal(format!("route has no path parameter {name}")))
    }

    /// The path parameters, for hashing a request.
    pub fn path_params_json(&self) -> serde_json::Value {
        let mut pairs: Vec<(String, String)> =
            self.path_params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        pairs.sort();
        serde_json::json!(pairs)
    }

    /// The body as text (lossy for binary bodies), for hashing a request.
    pub fn body_text(&self) -> String {
        match &self.body {
            Body::Text(text) => text.clone(),
            Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        }
    }

    /// The request's path as sent (a function URL has no route to fill path parameters).
    pub fn raw_path(&self) -> &str {
        &self.raw_path
    }

    /// The body exactly as received: what a webhook signature covers.
    pub fn body_bytes(&self) -> &[u8] {
        match &self.body {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => b"",
        }
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.first(name)
    }

    /// Every query parameter, decoded (a redirect's signature covers them all).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `limit` (1–100, default 25) and the opaque `cursor` of a listing.
    pub fn page(&self) -> Result<(i32, Option<Cursor>), ApiError> {
        let limit = match self.query("limit") {
            None => 25,
            Some(raw) => match raw.parse::<i32>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    return Err(ApiError::validation(vec![FieldError::new(
                        "limit",
                        "must be an integer from 1 to 100",
                    )]));
                }
            },
        };
        let cursor = self.query("cursor").map(Cursor::decode).transpose()?;
        Ok((limit, cursor))
    }

    /// The version named by `If-Match` (`"v<version>"`, weak or strong). A missing header on
    /// a conditional write is 428, so a client cannot overwrite what it never read.
    pub fn if_match(&self) -> Result<Option<u64>, ApiError> {
        let Some(raw) = self.header("if-match") else {
            return Ok(None);
        };
        raw.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .strip_prefix('v')
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::PreconditionFailed("If-Match does not name a version of this resource".to_owned()))
    }

    pub fn require_if_match(&self) -> Result<u64, ApiError> {
        self.if_match()?.ok_or_else(|| {
            ApiError::PreconditionRequired(
                "send If-Match with the ETag you read, to avoid overwriting newer changes".to_owned(),
            )
        })
    }

    /// Parses the JSON body: 415 for another media type, 413 past the limit, 400 for broken
    /// JSON, 422 for JSON of the wrong shape.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        self.json_within(MAX_BODY_BYTES)
    }

    /// [`Input::json`] with another size limit, for the few routes that take large bodies
    /// (a checkout of 10,000 recipients).
    pub fn json_within<T: DeserializeOwned>(&self, max_bytes: usize) -> Result<T, ApiError> {
        if let Some(content_type) = self.header("content-type") {
            let media = content_type.split(';').next().unwrap_or_default().trim();
            if !media.eq_ignore_ascii_case("application/json") {
                return Err(ApiError::UnsupportedMediaType(format!("send application/json, not {media}")));
            }
        }
        let bytes = self.body_bytes();
        if bytes.len() > max_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body is {} bytes; the limit is {max_bytes}",
                bytes.len()
            )));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest("a JSON body is required".to_owned()));
        }
        serde_json::from_slice(bytes).map_err(|err| {
            use serde_json::error::Category;
            match err.classify() {
                Category::Data => ApiError::validation(vec![FieldError::new("", err.to_string())]),
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::BadRequest(format!("the body is not valid JSON: {err}"))
                }
            }
        })
    }
}

/// For PATCH fields that may be cleared (`#[serde(default, deserialize_with = "nullable")]`):
/// absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
