#!/usr/bin/env bash
# Runs the W3C trace-context test suite against examples/w3c_service.rs: at SPEC_LEVEL=2 and at
# SPEC_LEVEL=1, both at STRICT_LEVEL=2 (every tracestate limit checked).
#
#   scripts/w3c-suite.sh <checkout of github.com/w3c/trace-context, or its test/ folder>
#
# Fetches nothing: bring the suite and a python3 with aiohttp (`pip install aiohttp`; set
# PYTHON to use another interpreter, e.g. a virtualenv's). The service listens on
# APM_EXAMPLE_ADDR (default 127.0.0.1:3000); the harness on HARNESS_HOST:HARNESS_PORT (the
# suite's default 127.0.0.1:7777). Exits non-zero unless every level passes.
set -euo pipefail

suite=${1:?usage: $0 <checkout of github.com/w3c/trace-context, or its test/ folder>}
if [[ -f $suite/test/test.py ]]; then suite=$suite/test; fi
[[ -f $suite/test.py ]] || { echo "no test.py in $suite" >&2; exit 2; }
suite=$(cd "$suite" && pwd)
python=${PYTHON:-python3}
"$python" -c 'import aiohttp' 2>/dev/null || { echo "$python has no aiohttp: pip install aiohttp" >&2; exit 2; }

cd "$(dirname "$0")/.."
addr=${APM_EXAMPLE_ADDR:-127.0.0.1:3000}
host=${addr%:*}
port=${addr##*:}
cargo build --quiet --example w3c_service
target_dir=$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
log=$target_dir/w3c-service.log

APM_EXAMPLE_ADDR=$addr "$target_dir/debug/examples/w3c_service" >"$log" 2>&1 &
service=$!
# SIGTERM makes the example flush and exit; wait so that its last line is in the log.
trap 'kill -TERM "$service" 2>/dev/null && wait "$service" 2>/dev/null; echo "service log: $log"' EXIT
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then break; fi
    kill -0 "$service" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done

status=0
summary=()
for spec in 2 1; do
    out=$target_dir/w3c-suite-level$spec.log
    echo "== SPEC_LEVEL=$spec STRICT_LEVEL=2 python test.py http://$addr/test"
    set +e
    (cd "$suite" && SPEC_LEVEL=$spec STRICT_LEVEL=2 "$python" test.py "http://$addr/test") >"$out" 2>&1
    rc=$?
    set -e
    ran=$(sed -n 's/^Ran \([0-9]*\) tests\? .*/\1/p' "$out")
    passed=$(grep -c '\.\.\. ok$' "$out" || true)
    skipped=$(grep -c '\.\.\. skipped' "$out" || true)
    failed=$(grep -cE '\.\.\. (FAIL|ERROR)$' "$out" || true)
    grep -E '\.\.\. (FAIL|ERROR)$|^(FAIL|ERROR):' "$out" || true
    tail -n 1 "$out"
    summary+=("SPEC_LEVEL=$spec STRICT_LEVEL=2: ran ${ran:-0}, $passed passed, $failed failed, $skipped skipped (exit $rc)")
    if [[ $rc -ne 0 || -z $ran ]]; then status=1; fi
done
printf '%s\n' "${summary[@]}"
exit $status
