//! Third parties, each encapsulated behind one client type with typed methods. Stripe,
//! Shopify, Xero and S3 clients join these in their issues.

pub mod secrets;
pub mod smtp;
