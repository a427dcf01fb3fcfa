//! The integration suite: every test runs against its own stack in the local moto server,
//! over real HTTP through the local gateway. Run with `infra/bestow test`.

mod bad_input;
mod billing;
mod bulk;
mod catalog;
mod concurrency;
mod gifts;
mod idempotency;
mod jobs;
mod ledger;
mod orders;
mod plans;
mod round_trips;
mod runtime;
mod secrets;
mod shopify;
mod storefronts;
mod support;
mod tenancy;
mod vendors;
mod wiring;
