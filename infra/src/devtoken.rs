//! Local dev tokens: HS256 JWTs signed with a key made fresh for each run of the stack.
//! The local gateway verifies them and hands their claims to the functions exactly as the
//! API Gateway JWT authorizer does (all values strings, arrays as `"[a b]"`).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const SCOPE: &str = "bestow/api";

#[derive(Clone)]
pub struct DevKeys {
    key: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("not a JWT")]
    Malformed,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("missing scope {SCOPE}")]
    Scope,
}

/// Who a dev token speaks for.
pub struct DevUser<'a> {
    pub sub: &'a str,
    pub group: &'a str,
    pub vendor_id: Option<&'a str>,
}

impl DevKeys {
    pub fn random() -> Self {
        let mut key = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        Self { key }
    }

    /// The key as hex, so `bestow-local token` can mint more tokens for a running stack.
    pub fn to_hex(&self) -> String {
        self.key.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.trim();
        if !hex.len().is_multiple_of(2) {
            return None;
        }
        let key = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        (!key.is_empty()).then_some(Self { key })
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    /// A Cognito-shaped access token valid for `ttl_seconds`.
    pub fn issue(&self, user: &DevUser<'_>, ttl_seconds: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = json!({
            "sub": user.sub,
            "cognito:groups": [user.group],
            "token_use": "access",
            "scope": SCOPE,
            "client_id": "local-dev-client",
            "iss": "https://cognito-idp.local/bestow-dev",
            "iat": now,
            "exp": now + ttl_seconds,
        });
        if let Some(vendor) = user.vendor_id {
            claims["custom:vendor_id"] = json!(vendor);
        }
        self.sign(&claims)
    }

    pub fn sign(&self, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = self.mac();
        mac.update(format!("{header}.{payload}").as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{header}.{payload}.{signature}")
    }

    /// Verifies a token and returns its claims as the authorizer would pass them on.
    pub fn verify(&self, token: &str) -> Result<HashMap<String, String>, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(format!("{header}.{payload}").as_bytes());
        mac.verify_slice(&signature).map_err(|_| TokenError::Signature)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: serde_json::Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if claims.get("exp").and_then(Value::as_i64).is_none_or(|exp| exp <= now) {
            return Err(TokenError::Expired);
        }
        if !claims.get("scope").and_then(Value::as_str).is_some_and(|s| s.split(' ').any(|s| s == SCOPE)) {
            return Err(TokenError::Scope);
        }
        Ok(claims.into_iter().map(|(k, v)| (k, claim_string(&v))).collect())
    }
}

/// API Gateway flattens claims to strings; arrays become `"[a b]"`.
fn claim_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(claim_string).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_to_authorizer_shaped_claims() {
        let keys = DevKeys::random();
        let token = keys.issue(&DevUser { sub: "u1", group: "owner", vendor_id: Some("acme") }, 60);
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims["cognito:groups"], "[owner]");
        assert_eq!(claims["custom:vendor_id"], "acme");
        assert_eq!(claims["token_use"], "access");
        assert!(claims["exp"].parse::<i64>().is_ok());
        let again = DevKeys::from_hex(&keys.to_hex()).unwrap();
        assert!(again.verify(&token).is_ok());
    }

    #[test]
    fn forged_expired_and_unscoped_tokens_fail() {
        let keys = DevKeys::random();
        let other = DevKeys::random();
        let user = DevUser { sub: "u1", group: "owner", vendor_id: Some("acme") };
        assert_eq!(keys.verify(&other.issue(&user, 60)), Err(TokenError::Signature));
        assert_eq!(keys.verify(&keys.issue(&user, -1)), Err(TokenError::Expired));
        assert_eq!(keys.verify(&keys.sign(&json!({"sub": "x", "exp": 4102444800i64}))), Err(TokenError::Scope));
        assert_eq!(keys.verify("abc"), Err(TokenError::Malformed));
    }
}
