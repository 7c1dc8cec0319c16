//! Not a library: a stand-in for an application that depends on `apm-runtime` as a user would,
//! with its own reqwest clients. See `tests/` and this crate's `Cargo.toml`.
