//! Storefronts (C4): a vendor's branded shops, the products listed on each with their
//! overrides (title, prices, visible variants, sort order, availability window), and the
//! public catalogue read through the storefront resolver.
//!
//! A listing item holds the overrides and a *card* (what the public list shows: resolved
//! title, price range, stock state), so a public page is one Query. Cards are derived from
//! the product and its variants and are rebuilt after every catalogue write that touches a
//! listed product; the public product page reads the product and variants live.

pub mod dto;
pub mod model;
pub mod repo;
pub mod routes;
pub mod service;
