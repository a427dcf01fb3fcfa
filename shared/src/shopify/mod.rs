//! The Shopify connection (C7): a vendor's owner installs Bestow's Shopify app on their shop
//! (OAuth, offline token in Secrets Manager); the shop's catalogue and stock are mirrored into
//! the catalogue (a full sync job, then webhooks); a gift unit accepted for mirrored variants
//! becomes an order in the shop, which decrements its stock there, and the shop's fulfilment
//! of that order ships the unit.
//!
//! Shopify is the source of truth for mirrored products: they are written only by the sync
//! (the catalogue routes refuse changes to them), with ids derived from Shopify's, so a
//! re-sync updates in place and never duplicates.

pub mod dto;
pub mod jobs;
pub mod model;
pub mod repo;
pub mod routes;
pub mod service;
