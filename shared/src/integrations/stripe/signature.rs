//! Stripe webhooks: the `Stripe-Signature` check, exactly as Stripe specifies it
//! (<https://docs.stripe.com/webhooks#verify-manually>): the header is
//! `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`; the signed payload is
//! `<t>.<raw body>`; a signature is HMAC-SHA256 of it keyed with the endpoint's whole
//! signing secret (`whsec_…`), hex-encoded. Any one `v1` matching (compared in constant time)
//! is enough, since Stripe sends several while a secret is being rolled; `v0` (test-mode
//! legacy) is ignored. The timestamp must be within the tolerance, so a captured request
//! cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Stripe's libraries default to five minutes.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp")]
    NoTimestamp,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoSignature,
    #[error("the signature's timestamp is {age_seconds} s away from now (at most {SIGNATURE_TOLERANCE_SECONDS} s)")]
    OutsideTolerance { age_seconds: i64 },
    #[error("no v1 signature matches the payload")]
    Mismatch,
}

/// Checks a webhook request's signature; returns the signed timestamp. `header` is the raw
/// `Stripe-Signature` value, `payload` the body exactly as received (before any parsing).
pub fn verify_webhook(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now_epoch_s: i64,
) -> Result<i64, SignatureError> {
    let header = header.filter(|h| !h.trim().is_empty()).ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else { continue };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::NoTimestamp)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    // Stripe's libraries refuse old timestamps; a timestamp far in the future is refused too.
    let age_seconds = now_epoch_s - timestamp;
    if age_seconds.abs() > SIGNATURE_TOLERANCE_SECONDS {
        return Err(SignatureError::OutsideTolerance { age_seconds });
    }
    let expected = hex(&sign(payload, timestamp, secret));
    // `ct_eq` on slices answers "no" at once for another length (lengths are not secret: a v1
    // is always 64 hex digits) and compares the contents in constant time.
    let matches =
        signatures.iter().fold(subtle::Choice::from(0), |any, given| any | given.as_bytes().ct_eq(expected.as_bytes()));
    if bool::from(matches) { Ok(timestamp) } else { Err(SignatureError::Mismatch) }
}

/// HMAC-SHA256 of `<timestamp>.<payload>` with the signing secret.
fn sign(payload: &[u8], timestamp: i64, secret: &str) -> Vec<u8> {
    // An HMAC key can have any length: new_from_slice cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

/// The `Stripe-Signature` header Stripe would send for `payload` at `timestamp`: for the
/// local Stripe fake and the tests, which must sign as Stripe does.
pub fn signature_header(payload: &[u8], timestamp: i64, secret: &str) -> String {
    format!("t={timestamp},v1={}", hex(&sign(payload, timestamp, secret)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret_0123456789";
    const PAYLOAD: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    const T: i64 = 1_767_225_600;
    /// Computed independently (Python: `hmac.new(secret, b"1767225600." + payload, sha256)`).
    const VECTOR: &str = "cd03007a4697db1e551ab1216a91a10b4f2115cc8ff24ccf93aa4d589a4d9156";

    #[test]
    fn matches_an_independently_computed_signature() {
        assert_eq!(signature_header(PAYLOAD, T, SECRET), format!("t={T},v1={VECTOR}"));
        let header = format!("t={T},v1={VECTOR}");
        assert_eq!(verify_webhook(PAYLOAD, Some(&header), SECRET, T + 10), Ok(T));
    }

    #[test]
    fn any_v1_may_match_and_v0_is_ignored() {
        let header = format!("t={T}, v1=00{}, v0={VECTOR}, v1={VECTOR}", &VECTOR[2..]);
        assert_eq!(verify_webhook(PAYLOAD, Some(&header), SECRET, T), Ok(T));
        let only_v0 = format!("t={T},v0={VECTOR}");
        assert_eq!(verify_webhook(PAYLOAD, Some(&only_v0), SECRET, T), Err(SignatureError::NoSignature));
    }

    #[test]
    fn refuses_tampering_other_secrets_stale_times_and_bad_headers() {
        let header = format!("t={T},v1={VECTOR}");
        let tampered = br#"{"id":"evt_1","type":"payment_intent.succeeded "}"#;
        assert_eq!(verify_webhook(tampered, Some(&header), SECRET, T), Err(SignatureError::Mismatch));
        assert_eq!(verify_webhook(PAYLOAD, Some(&header), "whsec_other", T), Err(SignatureError::Mismatch));
        assert_eq!(
            verify_webhook(PAYLOAD, Some(&header), SECRET, T + 301),
            Err(SignatureError::OutsideTolerance { age_seconds: 301 })
        );
        assert!(verify_webhook(PAYLOAD, Some(&header), SECRET, T - 301).is_err(), "from the future");
        assert_eq!(verify_webhook(PAYLOAD, Some(&header), SECRET, T + 300), Ok(T), "the edge is inside");
        // The timestamp is signed: moving it breaks the signature.
        let moved = format!("t={},v1={VECTOR}", T + 1);
        assert_eq!(verify_webhook(PAYLOAD, Some(&moved), SECRET, T), Err(SignatureError::Mismatch));
        assert_eq!(verify_webhook(PAYLOAD, None, SECRET, T), Err(SignatureError::Missing));
        assert_eq!(verify_webhook(PAYLOAD, Some("v1=abc"), SECRET, T), Err(SignatureError::NoTimestamp));
        assert_eq!(verify_webhook(PAYLOAD, Some("t=x,v1=abc"), SECRET, T), Err(SignatureError::NoTimestamp));
        assert_eq!(verify_webhook(PAYLOAD, Some(&format!("t={T},v1=short")), SECRET, T), Err(SignatureError::Mismatch));
    }
}
