//! Attribute macros for `apm-runtime`. Use them through `apm_runtime`, which re-exports them.
