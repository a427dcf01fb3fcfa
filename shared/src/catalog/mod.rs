//! The product and variation engine (C3): products with typed attributes and up to three
//! options, variants generated from the options' cartesian product, SKUs unique per vendor.
//!
//! Variants name their option values by id, not by text or position, so renaming a value or
//! reordering values and options touches no variant; adding a value creates variants,
//! removing one archives them. Generation is a pure plan (`model::plan_generation`) applied
//! in one transaction when small, or by the `variant_generation` job when large; while a job
//! runs the product carries a lock that every variant write checks in its own transaction.

pub mod dto;
pub mod jobs;
pub mod model;
pub mod repo;
pub mod routes;
pub mod service;
