//! Third parties, each encapsulated behind one client type. Only `secrets` exists so far;
//! Stripe, Shopify, Xero, SMTP and S3 clients join it in their issues.

pub mod secrets;
