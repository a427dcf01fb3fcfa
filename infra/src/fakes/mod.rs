//! Local fakes of third-party HTTP APIs, for the tests and the local stack: each one serves the
//! real API's shapes on a loopback port and lets a test drive what the real service would do
//! on its own (a payment succeeding, a refund settling).

pub mod stripe;
