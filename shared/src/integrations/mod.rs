//! Third parties, each encapsulated behind one client type with typed methods: Stripe,
//! Shopify, Xero, SMTP, and the Secrets Manager store their credentials live in.

use std::time::Duration;

use rand::Rng;

pub mod secrets;
pub mod shopify;
pub mod smtp;
pub mod stripe;
pub mod xero;

/// 250 ms, 500 ms, … (capped at 4 s) with up to 50 % jitter, so retrying clients do not move in
/// step.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 250u64 << attempt.saturating_sub(1).min(4);
    Duration::from_millis(base + rand::rng().random_range(0..=base / 2))
}

/// A reqwest error's text with the URL replaced by `label` (URLs can carry shop names or ids;
/// errors are logged).
pub(crate) fn without_url(err: &reqwest::Error, label: &str) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), label);
    }
    text
}
