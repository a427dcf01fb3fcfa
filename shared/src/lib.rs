//! Bestow: the library behind every Lambda function. All logic lives here; the binaries in
//! `functions/` are wiring only. One folder per domain (`vendors`, ...), each with the same
//! inner files, over the cross-cutting modules below.

pub mod app;
pub mod audit;
pub mod billing;
pub mod bulk;
pub mod catalog;
pub mod config;
pub mod error;
pub mod fulfillment;
pub mod http;
pub mod integrations;
pub mod jobs;
pub mod ledger;
pub mod notifications;
pub mod openapi;
pub mod orders;
pub mod pdf;
pub mod plans;
pub mod routes;
pub mod shopify;
pub mod store;
pub mod storefronts;
pub mod telemetry;
pub mod tenancy;
pub mod vendors;
pub mod xero;

pub use app::App;
pub use error::ApiError;
