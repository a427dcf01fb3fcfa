//! Notifications: email templates and the email dispatch job (the vendor's own SMTP server).

pub mod dto;
pub mod jobs;
pub mod model;
pub mod routes;
pub mod service;
