//! The local API Gateway: serves every route of the template on one port, plays the JWT
//! authorizer with dev tokens, and hands each function the same API Gateway v2 event it
//! would receive deployed (built as JSON and decoded by `lambda_http` itself).
//!
//! Handlers run in-process (`bestow::http::handle`, the function the binaries serve), not
//! behind `cargo lambda watch`: one process starts in a second, needs no rebuild per
//! function, and the runtime-API wiring of the binaries is proven separately by
//! `runtime_api` against real binaries.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use bestow::App;
use bestow::http::RouteDef;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, RequestExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::devtoken::{DevKeys, SCOPE};

/// API Gateway's own payload limit for HTTP APIs.
const GATEWAY_MAX_BODY: usize = 10 * 1024 * 1024;

pub struct Gateway {
    app: App,
    keys: DevKeys,
    routes: &'static [&'static RouteDef],
    cors_origin: http::HeaderValue,
}

pub type GatewayResponse = http::Response<Full<Bytes>>;

/// A matched route and its decoded path parameters.
fn match_route(
    routes: &'static [&'static RouteDef],
    method: &Method,
    path: &str,
) -> Option<(&'static RouteDef, HashMap<String, String>)> {
    let request: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    routes
        .iter()
        .copied()
        .filter(|r| r.method == method.as_str())
        .filter_map(|route| {
            let template: Vec<&str> = route.path.split('/').collect();
            if template.len() != request.len() {
                return None;
            }
            let mut params = HashMap::new();
            let mut literals = 0;
            for (t, r) in template.iter().zip(&request) {
                match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    Some(name) if !r.is_empty() => {
                        params.insert(name.to_owned(), percent_decode(r));
                    }
                    Some(_) => return None,
                    None if t == r => literals += 1,
                    None => return None,
                }
            }
            Some((literals, route, params))
        })
        // API Gateway prefers the most specific route: the most literal segments.
        .max_by_key(|(literals, _, _)| *literals)
        .map(|(_, route, params)| (route, params))
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn gateway_message(status: StatusCode, message: &str) -> GatewayResponse {
    let mut response = http::Response::new(Full::new(Bytes::from(json!({ "message": message }).to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
    response
}

impl Gateway {
    pub fn new(app: App, keys: DevKeys, routes: &'static [&'static RouteDef]) -> Self {
        Self { app, keys, routes, cors_origin: http::HeaderValue::from_static("*") }
    }

    /// The origin allowed by CORS (`bestow-local` uses the template's `CorsAllowOrigin`).
    pub fn with_cors_origin(mut self, origin: &str) -> Self {
        if let Ok(origin) = http::HeaderValue::from_str(origin) {
            self.cors_origin = origin;
        }
        self
    }

    pub fn keys(&self) -> &DevKeys {
        &self.keys
    }

    /// Serves until the listener fails or the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let handler = move |req: http::Request<Incoming>| {
            let gateway = Arc::clone(&self);
            async move { gateway.handle(req).await }
        };
        crate::loopback::serve(listener, Arc::new(handler)).await
    }

    async fn handle(&self, req: http::Request<Incoming>) -> GatewayResponse {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, GATEWAY_MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
            }
        };
        let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut response = self.call(&parts.method, path_and_query, &parts.headers, body).await;
        // The template's CORS configuration, as API Gateway applies it.
        let headers = response.headers_mut();
        headers.insert("access-control-allow-origin", self.cors_origin.clone());
        headers.insert("access-control-expose-headers", http::HeaderValue::from_static("ETag, Location"));
        response
    }

    /// One request through the gateway, without the socket: route, authorize, invoke.
    pub async fn call(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> GatewayResponse {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        if method == Method::GET && path == "/openapi.json" {
            let mut response =
                http::Response::new(Full::new(Bytes::from(bestow::openapi::to_json(bestow::routes::ALL))));
            response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
            return response;
        }
        if method == Method::OPTIONS {
            let mut response = http::Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            let h = response.headers_mut();
            h.insert(
                "access-control-allow-methods",
                http::HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
            );
            h.insert(
                "access-control-allow-headers",
                http::HeaderValue::from_static("Authorization, Content-Type, If-Match, Idempotency-Key"),
            );
            h.insert("access-control-max-age", http::HeaderValue::from_static("600"));
            return response;
        }
        // Webhooks have function URLs of their own when deployed; locally they share the port.
        let matched =
            match_route(self.routes, method, path).or_else(|| match_route(bestow::routes::WEBHOOKS, method, path));
        let Some((route, path_params)) = matched else {
            return gateway_message(StatusCode::NOT_FOUND, "Not Found");
        };
        // The JWT authorizer: no valid token, no invocation.
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        let claims = match token.map(|t| self.keys.verify(t)) {
            // Routes without an authorizer (public storefront reads) get no claims at all.
            _ if route.is_public() => None,
            Some(Ok(claims)) => Some(claims),
            _ => return gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized"),
        };
        let request_id = bestow::store::ids::new_id();
        let event = api_gateway_event(route, method, path, query, headers, &path_params, claims, &body, &request_id);
        let request: lambda_http::Request = match serde_json::from_value::<LambdaRequest>(event) {
            Ok(decoded) => decoded.into(),
            Err(e) => {
                return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, &format!("event did not decode: {e}"));
            }
        };
        let mut context = lambda_http::Context::default();
        context.request_id = request_id;
        context.invoked_function_arn = format!("arn:aws:lambda:us-east-1:000000000000:function:{}", route.function);
        let response = bestow::http::handle(&self.app, route, request.with_lambda_context(context)).await;
        to_gateway_response(response)
    }
}

/// The API Gateway HTTP API (payload 2.0) event for a request, as the service builds it.
#[allow(clippy::too_many_arguments)]
pub fn api_gateway_event(
    route: &RouteDef,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    path_params: &HashMap<String, String>,
    claims: Option<HashMap<String, String>>,
    body: &[u8],
    request_id: &str,
) -> Value {
    let mut header_map = serde_json::Map::new();
    for name in headers.keys() {
        let joined = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
        header_map.insert(name.as_str().to_owned(), Value::String(joined));
    }
    let mut query_map = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")));
        match query_map.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query_map.insert(k, Value::String(v));
            }
        }
    }
    let now = time::OffsetDateTime::now_utc();
    // A function URL (a webhook) has one `$default` route and fills no path parameters.
    let function_url = bestow::routes::WEBHOOKS.iter().any(|w| w.function == route.function);
    let route_key = if function_url { "$default".to_owned() } else { format!("{} {}", route.method, route.path) };
    let path_params = if function_url { &HashMap::new() } else { path_params };
    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(base64::engine::general_purpose::STANDARD.encode(body)), true),
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "queryStringParameters": if query_map.is_empty() { Value::Null } else { Value::Object(query_map) },
        "pathParameters": if path_params.is_empty() { Value::Null } else { json!(path_params) },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": { "jwt": { "claims": claims.clone().unwrap_or_default(), "scopes": [SCOPE] } },
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default(),
            "timeEpoch": now.unix_timestamp() * 1000,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    });
    if claims.is_none() {
        // A route without an authorizer has no authorizer context.
        if let Some(context) = event["requestContext"].as_object_mut() {
            context.remove("authorizer");
        }
    }
    event
}

fn to_gateway_response(response: http::Response<Body>) -> GatewayResponse {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    http::Response::from_parts(parts, Full::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_route_wins_and_params_decode() {
        let routes = bestow::routes::ALL;
        let (route, params) = match_route(routes, &Method::GET, "/vendors/acme%2Dgifts").unwrap();
        assert_eq!(route.function, "vendors-get");
        assert_eq!(params["vendorId"], "acme-gifts");
        let (route, _) = match_route(routes, &Method::POST, "/vendors/acme/shipping/quote").unwrap();
        assert_eq!(route.function, "shipping-quote");
        assert!(match_route(routes, &Method::DELETE, "/vendors/acme").is_none());
        assert!(match_route(routes, &Method::GET, "/vendors//shipping").is_none());
    }
}
