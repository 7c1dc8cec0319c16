#!/usr/bin/env bash
# Model-checks the span hand-off (apm-runtime/src/handoff/loom_tests.rs) with loom: every
# interleaving of a producer thread and the consumer up to LOOM_MAX_PREEMPTIONS preemptions.
# Its own target directory: `--cfg apm_loom` changes every crate's flags, which would otherwise
# invalidate the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg apm_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-target/loom}"
cargo test -p apm-runtime --release --lib handoff::loom_tests -- --test-threads=2 "$@"
