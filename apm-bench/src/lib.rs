//! Benchmarks of `apm-runtime` against `tracing`, `fastrace` and `opentelemetry` (issue 6).
//!
//! Every scenario is written once per library in this crate, so that the criterion suite
//! (`benches/suite.rs`) and the instruction counter (`src/bin/count.rs`, driven by
//! `callgrind.sh`) run exactly the same code. Each library runs with its collector really
//! consuming what it records:
//!
//! - `apm-runtime`: an [`Agent`](apm_runtime::Agent) whose sink serializes every event with
//!   `Event::write_ndjson` into a reused buffer, then counts and discards it
//!   ([`apm::BenchSink`]); for scenario 1's total-CPU figure, which counts until the events are
//!   handed over, it counts them without serializing (a separate row serializes).
//! - `fastrace`: the global collector with a reporter that keeps each reported batch
//!   ([`fast::KeepReporter`]).
//! - `tracing`: `tracing-subscriber`'s registry with a layer that records every closed span's
//!   name, ids and timestamps into a `Vec` ([`trc::KeepLayer`]).
//! - `opentelemetry`: the SDK's batch span processor with an exporter that counts and discards
//!   ([`otel::DiscardExporter`]).
//! - the floor: the same functions with no instrumentation ([`floor`]).
//!
//! Apart from these scenarios, `src/bin/delivery.rs` measures whether the agent's reporter
//! thread keeps up with producers paced at a given rate, with a sink that encodes and gzips
//! every event as the intake sink does ([`delivery`]).

#![deny(missing_docs)]

pub mod apm;
pub mod cpu;
pub mod delivery;
pub mod fast;
pub mod floor;
pub mod jobs;
pub mod otel;
pub mod report;
pub mod scenarios;
pub mod trc;
pub mod work;
