#!/usr/bin/env bash
# Emulated instruction counts (not time) of one general product on aarch64, tapegrad's NEON
# kernel against matrixmultiply's NEON kernel, counted exactly under qemu-aarch64 (user
# mode): `-singlestep` makes every instruction its own translation block and
# `-d exec,nochain` logs every block executed, so the log has one `Trace` line per
# instruction. One product = count(reps = 2) - count(reps = 1) of examples/gemm_count.rs,
# which cancels start-up, compilation of the machine, feeding and first-call work.
# tapegrad's figure is one `Machine::run` of a graph holding one `matmul` (the op's
# dispatch included); matrixmultiply's is one `sgemm`/`dgemm` call (its packing buffers'
# allocation included). Both on one thread, f32 and f64, release builds.
#
#   bash benches/aarch64_insns.sh [SIZE...]      (default: 64 256; each an n×n×n product)
#
# Not run by CI (about 1 µs of wall time per emulated instruction: 256 takes minutes).
# Needs what .ci/aarch64.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-64 256}")
# shellcheck disable=SC2206
sizes=(${sizes[*]})

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_DIR=target/aarch64
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
/usr/bin/cargo build --release -Zbuild-std --target aarch64-unknown-linux-gnu \
    --example gemm_count
bin=target/aarch64/aarch64-unknown-linux-gnu/release/examples/gemm_count

count() {
    qemu-aarch64 -L /usr/aarch64-linux-gnu -singlestep -d exec,nochain -D /dev/stderr \
        "$bin" "$@" 2>&1 >/dev/null | grep -c '^Trace'
}

printf '%-15s %-4s %-13s %14s %10s\n' library type "m×k×n" instructions "per MAC"
for n in "${sizes[@]}"; do
    for ty in f32 f64; do
        for lib in tapegrad matrixmultiply; do
            one=$(count "$lib" "$ty" "$n" "$n" "$n" 1)
            two=$(count "$lib" "$ty" "$n" "$n" "$n" 2)
            insns=$((two - one))
            per=$(awk -v i="$insns" -v n="$n" 'BEGIN { printf "%.4f", i / (n * n * n) }')
            printf '%-15s %-4s %-13s %14d %10s\n' "$lib" "$ty" "${n}×${n}×${n}" "$insns" "$per"
        done
    done
done
