#!/bin/sh
# Determinism across devices: every target that trains the shared two-moons workload
# (edge/moons) must print the host's trace, compared at the printed 4 decimals: the 20
# `epoch N loss X.XXXX` lines and the `accuracy R/T` line. And bit for bit: the
# `epoch N loss_bits XXXXXXXX` lines of a host built without `std` (tapegrad's portable
# kernels and the `libm` crate, as on the devices) must equal each target's. (The default
# host build differs in the last bits from epoch 2 on: its AVX2 kernels fuse multiply-adds
# and std's logf, and expf outside cross_entropy and the exp op on x86-64 (which compute it
# vectorised in tapegrad), are the C library's.)
#   edge/trace-check.sh            the hosts against every source in SOURCES
# To add a target, write a function `trace_NAME` that prints that target's whole output
# on stdout (anything may surround the trace lines) and add NAME to SOURCES.
# Time: two host builds (about 1 minute each from clean) plus edge/firmware/run.sh for
# each device (about 1.5 minutes from clean, seconds once built: run edge/firmware/run.sh
# and edge/web/check.sh first) and edge/web/build.sh.
set -eu

edge="$(cd "$(dirname "$0")" && pwd)"
SOURCES="${SOURCES:-cortex_m4 cortex_m0 riscv wasm}"

# The trace lines of any output.
trace_lines() {
    grep -E '^(epoch [0-9]+ loss -?[0-9]+\.[0-9]{4}|epoch [0-9]+ loss (nan|-?inf)|accuracy [0-9]+/[0-9]+)$' || true
}

# The bit patterns of the epochs' losses.
bits_lines() {
    grep -E '^epoch [0-9]+ loss_bits [0-9a-f]{8}$' || true
}

# $1: features of the host build ("std" or none).
trace_host() {
    (cd "$edge/moons" && CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" nice -n 10 \
        cargo run -q --release --example trace ${1:+--features "$1"})
}

# A firmware target's output: its log from edge/firmware/run.sh (run now).
trace_firmware() {
    rm -f "$edge/firmware/target/$1.log"
    "$edge/firmware/run.sh" "$1" >&2 || return 1
    cat "$edge/firmware/target/$1.log"
}
trace_cortex_m4() { trace_firmware thumbv7em-none-eabihf; }
trace_cortex_m0() { trace_firmware thumbv6m-none-eabi; }
trace_riscv() { trace_firmware riscv32imc-unknown-none-elf; }

# The WebAssembly module in Node (built by edge/web/build.sh, which edge/web/check.sh runs);
# its `loss_bits=a,b,...` line becomes `epoch N loss_bits X` lines.
trace_wasm() {
    (cd "$edge/web" && ./build.sh -q >&2) &&
        (cd "$edge/web" && node train.mjs moons_web.wasm) | awk '
            /^loss_bits=/ { n = split(substr($0, 11), b, ","); for (i = 1; i <= n; i++) print "epoch " i " loss_bits " b[i]; next }
            { print }'
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for host in std no_std; do
    if ! trace_host "$([ "$host" = std ] && echo std)" >"$tmp/$host.out"; then
        echo "FAIL: the host's trace run ($host) failed"
        exit 1
    fi
done
trace_lines <"$tmp/std.out" >"$tmp/host"
bits_lines <"$tmp/no_std.out" >"$tmp/host.bits"
lines="$(wc -l <"$tmp/host")"
if [ "$lines" -lt 2 ] || [ ! -s "$tmp/host.bits" ]; then
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
    bits_lines <"$tmp/$source.out" >"$tmp/$source.bits"
    if diff -u "$tmp/host.bits" "$tmp/$source.bits"; then
        echo "ok $source: the same loss bits as the host without std, every epoch"
    else
        echo "FAIL $source: its loss bits differ from the host's without std (above)"
        status=1
    fi
done
exit $status
