//! Vendor plans on Stripe Billing (the platform's own Stripe account): the plans and their
//! limits, a vendor's subscription through a Checkout Session in subscription mode, the
//! subscription and invoice webhooks that move its plan state, and the checks at the points
//! where limited resources are created.

pub mod dto;
pub mod model;
pub mod repo;
pub mod routes;
pub mod service;
