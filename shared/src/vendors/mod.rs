//! Vendors (tenants) and their configuration (C2): profile, status, shipping rules and
//! quotes, SMTP, Stripe and storage settings. Credentials go to Secrets Manager.

pub mod dto;
pub mod model;
pub mod repo;
pub mod routes;
pub mod service;
