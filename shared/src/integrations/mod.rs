//! Third parties, each encapsulated behind one client type with typed methods: Stripe,
//! Shopify, SMTP, and the Secrets Manager store their credentials live in.

pub mod secrets;
pub mod shopify;
pub mod smtp;
pub mod stripe;
