//! Stripe: the API client (payment intents, refunds) and the webhook signature check. No other
//! module builds a Stripe request or sees a Stripe key.

pub mod client;
pub mod signature;

pub use client::{NewPaymentIntent, NewRefund, PaymentIntent, Refund, StripeClient, StripeError};
pub use signature::{SIGNATURE_TOLERANCE_SECONDS, SignatureError, signature_header, verify_webhook};
