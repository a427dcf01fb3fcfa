//! Responses: JSON bodies with an ETag where the resource is versioned, problem+json errors.

use lambda_http::{Body, Response};
use serde::Serialize;

use crate::error::ApiError;

pub struct ApiResponse {
    status: u16,
    content_type: &'static str,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
}

impl ApiResponse {
    pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
        Ok(Self { status, content_type: "application/json", body: Some(body), headers: Vec::new() })
    }

    pub fn ok<T: Serialize>(value: &T) -> Result<Self, ApiError> {
        Self::json(200, value)
    }

    pub fn no_content() -> Self {
        Self { status: 204, content_type: "application/json", body: None, headers: Vec::new() }
    }

    /// Tags the response with the resource's version; clients send it back in `If-Match`.
    pub fn with_etag(mut self, version: u64) -> Self {
        self.headers.push(("etag", format!("\"v{version}\"")));
        self
    }

    pub fn with_location(mut self, location: String) -> Self {
        self.headers.push(("location", location));
        self
    }

    pub fn problem(err: &ApiError, instance: Option<String>) -> Self {
        let body = serde_json::to_vec(&err.to_problem(instance)).unwrap_or_default();
        Self { status: err.status(), content_type: "application/problem+json", body: Some(body), headers: Vec::new() }
    }

    pub(super) fn to_stored(&self) -> super::idempotency::StoredResponse {
        super::idempotency::StoredResponse {
            status: self.status,
            content_type: self.content_type.to_owned(),
            headers: self.headers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            body: self.body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// A kept response, marked as a replay.
    pub(super) fn replay(stored: super::idempotency::StoredResponse) -> Self {
        let known = |name: &str| ["etag", "location"].into_iter().find(|k| k.eq_ignore_ascii_case(name));
        let mut headers: Vec<(&'static str, String)> =
            stored.headers.into_iter().filter_map(|(k, v)| Some((known(&k)?, v))).collect();
        headers.push(("idempotent-replayed", "true".to_owned()));
        let content_type = if stored.content_type == "application/problem+json" {
            "application/problem+json"
        } else {
            "application/json"
        };
        Self { status: stored.status, content_type, body: stored.body.map(String::into_bytes), headers }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn into_response(self) -> Response<Body> {
        let mut builder = Response::builder().status(self.status);
        if self.body.is_some() {
            builder = builder.header("content-type", self.content_type);
        }
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let body = match self.body {
            Some(bytes) => Body::Text(String::from_utf8_lossy(&bytes).into_owned()),
            None => Body::Empty,
        };
        builder.body(body).unwrap_or_else(|_| {
            let mut fallback = Response::new(Body::Empty);
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
    }
}
