#!/usr/bin/env bash
# aarch64 (Raspberry Pi class boards): cross-builds the library's unit tests for
# aarch64-unknown-linux-gnu and runs them under qemu-aarch64 (user mode), NEON kernel and
# its check against matrixmultiply's NEON sgemm/dgemm included, and the zero-allocation
# tests (issue 11 saw one fail under qemu-aarch64 when it counted every thread's
# allocations). Doc tests do not run when cross-compiling. Exits non-zero on any failure.
#
# Needs Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross (linker and C runtime),
# qemu-user (qemu-aarch64), and rustc-web cargo-web rust-web-src (/usr/bin/rustc with the
# standard library's source, built for the target with -Zbuild-std; rustup's toolchain has
# only x86_64's). Installs whichever is missing.
#
# Built at opt-level 1 without debug info (debug assertions and overflow checks stay on):
# measured on this machine (2 cores, CARGO_BUILD_JOBS=2, packages already installed), from
# a clean target directory, 246 s building the standard library, the dependencies and the
# tests, and 22 s running the 265 tests under emulation; at the dev profile's opt-level 0
# with debug info, 258 s and 257 s (the convolution's second-order gradient check alone
# ran over a minute). The closing line prints the time.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user rustc-web cargo-web rust-web-src)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CARGO_TARGET_DIR=target/aarch64
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_PROFILE_DEV_OPT_LEVEL=1 CARGO_PROFILE_DEV_DEBUG=0
# The tests take their thread count from the environment like on the host; qemu-user runs
# threads, so rayon's pool is exercised too.
# Warnings in tapegrad (not in the standard library built here) fail the run.
/usr/bin/cargo test -Zbuild-std -Zwarnings --config 'build.warnings="deny"' \
    --target aarch64-unknown-linux-gnu --lib --test zero_alloc --test zero_alloc_rank5

echo "aarch64 unit tests and zero-allocation tests passed under qemu-aarch64 in $((SECONDS - start)) s"
