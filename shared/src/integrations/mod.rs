//! Third parties, each encapsulated behind one client type with typed methods. The Stripe
//! webhook check is here; the Stripe, Shopify and Xero clients join it in their issues.

pub mod secrets;
pub mod smtp;
pub mod stripe;
