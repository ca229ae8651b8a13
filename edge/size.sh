#!/bin/sh
# The opt-in size cfg of issue 10: builds tapegrad's unit tests with
# `--cfg tapegrad_no_second_order` (what edge/firmware and edge/web build with) and runs
# the test of what it changes: first-order gradients as usual, the second-order gradient
# of cross_entropy a located `Err`. (The size targets themselves are enforced by
# edge/firmware/run.sh (Cortex-M4 flash <= 81,920 B), edge/web/check.sh (wasm <= 100,000 B
# after wasm-opt) and .ci/size.sh (host).)
# Needs only cargo (rustup's stable toolchain); no apt packages. Uses its own target
# directory (target/nso), as the cfg changes every crate's build. About 2 minutes on 2
# cores from clean (CARGO_BUILD_JOBS=1), 10 seconds warm.
set -eu
cd "$(dirname "$0")/.."
RUSTFLAGS="--cfg tapegrad_no_second_order" CARGO_TARGET_DIR=target/nso \
    CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" \
    cargo test -q --lib no_second_order_is_a_located_error 2>&1 | tee target/nso-test.log
# `cargo test` exits 0 when a filter matches nothing: make sure the test ran.
grep -q '^test result: ok. 1 passed' target/nso-test.log
