//! The local stack: the same table, buckets and routes that `template.yaml` declares, on
//! one machine, against moto server. Used by `infra/bestow up`, by the test suite and by the
//! runtime-API harness.

pub mod devtoken;
pub mod fakes;
pub mod gateway;
mod loopback;
pub mod ops;
pub mod poller;
pub mod provision;
pub mod runtime_api;
pub mod samples;
pub mod seed;
pub mod stack;
pub mod template;

/// The demo tenant and users that the local stack seeds and prints tokens for.
pub mod demo {
    pub const VENDOR_ID: &str = "demo-gifts";
    pub const PLATFORM_ADMIN: &str = "demo-platform-admin";
    pub const OWNER: &str = "demo-owner";
}

/// Errors of the local tooling: reported to the developer, never served to a client.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("emulator: {0}")]
    Emulator(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Other(String),
}
