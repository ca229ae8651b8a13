#!/bin/sh
# Determinism across devices: every target that trains the shared two-moons workload
# (edge/moons) must print the host's trace, compared at the printed 4 decimals: the 20
# `epoch N loss X.XXXX` lines and the `accuracy R/T` line.
#   edge/trace-check.sh            host against every other source below
# To add a target, write a function `trace_NAME` that prints that target's whole output
# on stdout (anything may surround the trace lines) and add NAME to SOURCES.
# Time: the host build (about 1 minute from clean) plus edge/firmware/run.sh for the
# Cortex-M4 (about 1.5 minutes from clean).
set -eu

edge="$(cd "$(dirname "$0")" && pwd)"
SOURCES="${SOURCES:-cortex_m4}"

# The trace lines of any output.
trace_lines() {
    grep -E '^(epoch [0-9]+ loss -?[0-9]+\.[0-9]{4}|epoch [0-9]+ loss (nan|-?inf)|accuracy [0-9]+/[0-9]+)$' || true
}

trace_host() {
    (cd "$edge/moons" && CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" nice -n 10 \
        cargo run -q --release --example trace --features std)
}

trace_cortex_m4() {
    "$edge/firmware/run.sh" thumbv7em-none-eabihf >&2
    cat "$edge/firmware/target/thumbv7em-none-eabihf.log"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if ! trace_host >"$tmp/host.out"; then
    echo "FAIL: the host's trace run failed"
    exit 1
fi
trace_lines <"$tmp/host.out" >"$tmp/host"
lines="$(wc -l <"$tmp/host")"
if [ "$lines" -lt 2 ]; then
    echo "FAIL: the host printed no trace"
    exit 1
fi
status=0
for source in $SOURCES; do
    if ! "trace_$source" >"$tmp/$source.out"; then
        echo "FAIL $source: its run failed"
        status=1
        continue
    fi
    trace_lines <"$tmp/$source.out" >"$tmp/$source"
    if diff -u "$tmp/host" "$tmp/$source"; then
        echo "ok $source: the same $lines trace lines as the host"
    else
        echo "FAIL $source: its trace differs from the host's (above)"
        status=1
    fi
done
exit $status
