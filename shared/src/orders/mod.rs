//! Gift orders (C5): checkout against a storefront with a Stripe PaymentIntent, the payment
//! webhook and its state machine, and the exactly-once split into fulfillment units.

pub mod dto;
pub mod jobs;
pub mod model;
pub mod repo;
pub mod routes;
pub mod service;
