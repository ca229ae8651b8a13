#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60), one after another with one job each,
# and fails if any crashed. Installs what it needs (the nightly toolchain, cargo-fuzz).
#
#   fuzz/run.sh            # 60 s per target (CI)
#   fuzz/run.sh 600        # 10 minutes per target
#   TARGETS="graphs" fuzz/run.sh 3600
#   TAPEGRAD_FUZZ_TAME=1 fuzz/run.sh   # small extents only (see below)
#
# The generators produce huge and overflowing extents (up to 2^40 and past usize::MAX);
# TAPEGRAD_FUZZ_TAME=1 keeps extents small, to explore the rest faster while a crash in
# that class is open. Each target caps what tapegrad may allocate at 64 MiB
# (tapegrad::set_max_bytes), so huge plans must come back as Error::TooLarge.
#
# Prints `fuzz target=… seconds=… execs=… crashes=…` per target; on a crash, the input
# that crashed and the command that reproduces it.
set -uo pipefail
seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
targets="${TARGETS:-weights graphs feeds onnx}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
export TAPEGRAD_FUZZ_TAME="${TAPEGRAD_FUZZ_TAME:-0}"

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal || exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    nice -n 10 cargo install cargo-fuzz --locked || exit 1
fi
# Built once, with the same flags `cargo fuzz run` uses, so no target rebuilds below.
nice -n 10 cargo +nightly fuzz build -O || exit 1

status=0
for t in $targets; do
    corpus="corpus/$t"
    # corpus/<target>/seed-* are committed; the fuzzer adds its finds beside them
    mkdir -p "$corpus" "artifacts/$t"
    log="$(mktemp)"
    # regressions/<target>/ (inputs that once crashed) are replayed first, every run
    extra=""
    [ -d "regressions/$t" ] && extra="regressions/$t"
    # shellcheck disable=SC2086
    nice -n 10 cargo +nightly fuzz run -O "$t" "$corpus" $extra -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=60 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
    crash="$(grep -o 'Test unit written to [^ ]*' "$log" | sed 's/Test unit written to //' | tail -1)"
    crashes=0
    if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
        crashes=1
        status=1
    fi
    echo "fuzz target=$t seconds=$seconds execs=${execs:-0} crashes=$crashes tame=$TAPEGRAD_FUZZ_TAME"
    if [ "$crashes" -ne 0 ]; then
        grep -E -A1 'panicked at|ERROR: |SUMMARY' "$log" | head -8
        echo "fuzz crash target=$t input=$here/${crash:-unknown} log=$log"
        echo "fuzz reproduce: (cd $here && TAPEGRAD_FUZZ_TAME=$TAPEGRAD_FUZZ_TAME cargo +nightly fuzz run -O $t ${crash:-ARTIFACT})"
    else
        rm -f "$log"
    fi
done
exit "$status"
