#!/usr/bin/env bash
# Stable instruction counts for scenarios 1-3 (issue 6), and scenario 5's reporter path: runs `count` under callgrind with N and
# 2N operations and prints (I(2N) - I(N)) / N per scenario and library, which cancels the
# constant costs (process start, collector setup, final flush overhead).
#
# Only code under `std::sys::backtrace::__rust_begin_short_backtrace` is counted: the body of
# `main` and of every spawned Rust thread. That leaves out process start-up, in particular
# fastrace's TSC calibration constructor (it spins on the clock for a fixed wall time, so its
# count depends on valgrind's speed and would not cancel between the two runs).
#
# Two columns: the main thread alone (the calling thread in scenarios 1 and 2; in scenario 3 the
# capturing side only) and all threads (adds the reporter/collector/exporter threads' work and,
# in scenario 3, the worker that attaches and runs the span).
#
# Scenario 1 is counted as the suite times it, until the events are handed to apm's sink (which
# then only counts them), as s1-serialized, with the sink serializing every span too, and as
# s1-via-reporter, with a sink that may block, so that the flushes go through the reporter thread.
#
# Scenario 2's `-in-bin` variants count apm-macros' span fn defined in the `count` binary crate
# itself (thread-locals reached with the initial-exec model) instead of in the bench's library
# crate, where every library's functions live (general-dynamic model, see `count.rs`).
#
# Usage: apm-bench/callgrind.sh [scenario ...]
#   (default: s1 s1-serialized s1-via-reporter s2-no-tx s2-sampling-0 s2-no-tx-in-bin
#    s2-sampling-0-in-bin s3 s5; also s6 s6-borrow: a hot closure in a #[span] fn, see count.rs)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
  fi
fi

cargo build --release -q -j 2 -p apm-bench --bin count
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/count"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(s1 s1-serialized s1-via-reporter s2-no-tx s2-sampling-0 s2-no-tx-in-bin s2-sampling-0-in-bin s3 s5)

n_for() {
  case "$1" in
    s1|s1-serialized|s1-via-reporter) echo 20000 ;;   # child spans: 200 roots of 100
    s2-*) echo 200000 ;;     # calls
    s3) echo 8192 ;;         # jobs (a multiple of the 1024-job sync interval)
    s5) echo 10000 ;;        # events (10 batches of 1000)
    s6|s6-borrow) echo 204800 ;;  # closure calls (200 span fn calls of 1024)
  esac
}

# Sums the instruction totals of the per-thread files of one run; $2 = "main" or "all".
instructions() {
  local prefix="$1" which="$2" total=0 f v
  for f in "$prefix"-*; do
    if [ "$which" = main ] && [ "${f##*-}" != "01" ]; then continue; fi
    v=$(grep -E '^(summary|totals):' "$f" | head -1 | awk '{print $2}')
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

printf '| scenario | library | instructions/op, main thread | instructions/op, all threads |\n'
printf '|---|---|---:|---:|\n'
for s in "${scenarios[@]}"; do
  n=$(n_for "$s")
  libs=(apm apm-macros apm-start-only fastrace tracing otel floor)
  [ "${s%-borrow}" = s6 ] && libs=(floor apm-macros apm-macros-carried)
  for lib in "${libs[@]}"; do
    [ "$s" = s3 ] && [ "$lib" = apm-start-only ] && continue
    [ "$s" = s2-sampling-0 ] && [ "$lib" = tracing ] && continue
    [ "${s%-in-bin}" != "$s" ] && [ "$lib" != apm-macros ] && continue
    [ "$s" = s5 ] && [ "$lib" != apm ] && [ "$lib" != floor ] && continue
    [ "$s" = s1-serialized ] || [ "$s" = s1-via-reporter ] && [ "$lib" != apm ] && [ "$lib" != apm-macros ] && continue
    for k in 1 2; do
      valgrind --tool=callgrind --separate-threads=yes --dump-instr=no \
        --toggle-collect='std::sys::backtrace::__rust_begin_short_backtrace*' \
        --callgrind-out-file="$out/$s.$lib.$k" "$bin" "$s" "$lib" $((n * k)) >/dev/null 2>&1
    done
    main=$(( ($(instructions "$out/$s.$lib.2" main) - $(instructions "$out/$s.$lib.1" main)) ))
    all=$(( ($(instructions "$out/$s.$lib.2" all) - $(instructions "$out/$s.$lib.1" all)) ))
    awk -v s="$s" -v l="$lib" -v m="$main" -v a="$all" -v n="$n" \
      'BEGIN { printf "| %s | %s | %.1f | %.1f |\n", s, l, m / n, a / n }'
  done
done
