//! The platform's Xero organisation: the OAuth connection with its refresh lease, one invoice
//! per closed cycle and currency (with the statement attached), the payment that settles it
//! when the payout is made, and Xero's invoice webhooks.

pub mod dto;
pub mod jobs;
pub mod model;
pub mod repo;
pub mod routes;
pub mod service;
