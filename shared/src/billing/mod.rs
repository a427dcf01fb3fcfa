//! Money after the sale (C7): payout cycles and platform fees, statements, the Xero invoice
//! of each closed cycle, and vendor plans on Stripe Billing.

pub mod dto;
pub mod jobs;
pub mod model;
pub mod repo;
pub mod routes;
pub mod service;
