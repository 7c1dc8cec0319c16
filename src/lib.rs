//! Support code shared by the examples and the integration tests of the `apm-*` workspace:
//! the "remote services" the examples call, and the flows they run. Not published.

pub mod demo_server;
pub mod job;
pub mod scenario;
pub mod service;
