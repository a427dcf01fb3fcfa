//! Bulk catalogue operations (C3), run as jobs with a job resource: CSV import of products
//! with their variants, and bulk price and stock updates by filter or by list.
//!
//! Both validate every row or item before writing anything of it, write in transactions of
//! up to 100 items conditioned on what was read, and are safe to run twice: an import upserts
//! by handle and option values (a re-run changes nothing), and a bulk update marks each
//! variant it changed with its job id, so a retried job never applies an adjustment twice.

pub mod dto;
pub mod jobs;
pub mod model;
pub mod routes;
pub mod service;
