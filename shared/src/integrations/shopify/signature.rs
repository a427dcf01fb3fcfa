//! Shopify's two signatures, exactly as Shopify specifies them, both keyed with the app's
//! client secret and compared in constant time:
//! - webhooks (<https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-2-validate-the-origin-of-your-webhook-to-ensure-its-coming-from-shopify>):
//!   `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body;
//! - the OAuth redirect's query string (<https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant#step-3-verify-the-installation-request>):
//!   `hmac` is the hex HMAC-SHA256 of the other parameters, sorted by name and joined as
//!   `name=value&…`, with `%` and `&` escaped in names and values and `=` in names.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str) -> HmacSha256 {
    // HMAC takes keys of any length: this cannot fail.
    HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// Whether `header` (the `X-Shopify-Hmac-Sha256` value) signs `body` with `secret`.
pub fn webhook_is_signed(body: &[u8], header: Option<&str>, secret: &str) -> bool {
    let Some(expected) = header.and_then(|h| base64::engine::general_purpose::STANDARD.decode(h.trim()).ok()) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The webhook signature of `body` (what Shopify sends; used by the local fake's tests).
pub fn webhook_signature(body: &[u8], secret: &str) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn escape(text: &str, is_name: bool) -> String {
    let escaped = text.replace('%', "%25").replace('&', "%26");
    if is_name { escaped.replace('=', "%3D") } else { escaped }
}

/// The message Shopify signs for a redirect: every parameter but `hmac` (and the legacy
/// `signature`), sorted.
fn query_message(params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| name != "hmac" && name != "signature")
        .map(|(name, value)| (escape(name, true), escape(value, false)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("&")
}

/// Whether the redirect's decoded query parameters carry a valid `hmac`.
pub fn query_is_signed(params: &[(String, String)], secret: &str) -> bool {
    let Some(hmac) = params.iter().find(|(name, _)| name == "hmac").map(|(_, v)| v) else {
        return false;
    };
    let Some(expected) = decode_hex(hmac) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(query_message(params).as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// The `hmac` Shopify would put on a redirect with these parameters.
pub fn query_signature(params: &[(String, String)], secret: &str) -> String {
    let mut mac = mac(secret);
    mac.update(query_message(params).as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Shopify's own worked example of the redirect check.
    #[test]
    fn shopify_documented_query_vector() {
        let query = params(&[
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            ("hmac", "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"),
            ("shop", "some-shop.myshopify.com"),
            ("state", "0.6784241404160823"),
            ("timestamp", "1337178173"),
        ]);
        assert!(query_is_signed(&query, "hush"));
        assert_eq!(query_signature(&query, "hush"), "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf");
        let mut tampered = query.clone();
        tampered[2].1 = "other-shop.myshopify.com".into();
        assert!(!query_is_signed(&tampered, "hush"));
        assert!(!query_is_signed(&query, "wrong"));
        assert!(!query_is_signed(&query[..1], "hush"), "no hmac at all");
    }

    #[test]
    fn webhook_signature_round_trip_and_tamper() {
        let body = br#"{"id":1,"title":"Tee"}"#;
        let header = webhook_signature(body, "app-secret");
        assert!(webhook_is_signed(body, Some(&header), "app-secret"));
        assert!(!webhook_is_signed(br#"{"id":2,"title":"Tee"}"#, Some(&header), "app-secret"));
        assert!(!webhook_is_signed(body, Some(&header), "other-secret"));
        assert!(!webhook_is_signed(body, None, "app-secret"));
        assert!(!webhook_is_signed(body, Some("not base64!"), "app-secret"));
    }

    /// RFC 4231 test case 2 ("Jefe"), base64 of its HMAC-SHA256.
    #[test]
    fn webhook_signature_matches_the_hmac_standard_vector() {
        let expected = base64::engine::general_purpose::STANDARD
            .encode(decode_hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843").unwrap());
        assert_eq!(webhook_signature(b"what do ya want for nothing?", "Jefe"), expected);
    }
}
