//! Support code shared by the examples and the integration tests of the `apm-*` workspace.
//! Not published.

pub mod demo_server;
