//! Xero: OAuth 2.0 with rotating refresh tokens, the Accounting API calls Bestow makes, and the
//! webhook signature. No other module builds a Xero request or sees a Xero token.

pub mod client;

pub use client::{
    AccountRef, ContactRef, Invoice, InvoiceRef, LineItem, NewInvoice, NewPayment, XeroApp, XeroClient, XeroConnection,
    XeroEndpoints, XeroError, XeroTokens,
};

/// Xero signs webhooks the way Shopify does: `x-xero-signature` is the base64 HMAC-SHA256 of
/// the raw body, keyed with the app's webhook key
/// (<https://developer.xero.com/documentation/guides/webhooks/configuring-your-server/>).
pub fn webhook_is_signed(body: &[u8], signature: Option<&str>, webhook_key: &str) -> bool {
    crate::integrations::shopify::signature::webhook_is_signed(body, signature, webhook_key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn webhook_signature_is_base64_hmac_sha256_of_the_body() {
        // RFC 4231-style vector: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        let body = b"The quick brown fox jumps over the lazy dog";
        assert!(super::webhook_is_signed(body, Some("97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="), "key"));
        assert!(!super::webhook_is_signed(body, Some("97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="), "other"));
        assert!(!super::webhook_is_signed(body, None, "key"));
    }
}
