//! Stripe: the API client (payment intents, refunds; customers, subscription checkouts and
//! subscriptions on the platform's own account) and the webhook signature check. No other
//! module builds a Stripe request or sees a Stripe key.

pub mod client;
pub mod signature;

pub use client::{
    CheckoutSession, Customer, NewPaymentIntent, NewRefund, NewSubscriptionCheckout, PaymentIntent, Refund,
    StripeClient, StripeError, Subscription,
};
pub use signature::{SIGNATURE_TOLERANCE_SECONDS, SignatureError, signature_header, verify_webhook};
