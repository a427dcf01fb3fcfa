//! The audit log (C3, C5): who changed what, when, from which version to which. Entries are
//! written in the same transaction as the change they describe where the change is one
//! transaction, so a change without its entry (or the reverse) cannot exist.

pub mod dto;
pub mod model;
pub mod repo;
pub mod routes;
pub mod service;
