//! Fulfillment units and their gifts (C5): the redemption codes recipients type or scan, the
//! units an order is split into, and the gift delivery (QR code and email) of each.

pub mod dto;
pub mod jobs;
pub mod model;
pub mod routes;
pub mod service;
