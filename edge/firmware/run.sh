#!/bin/sh
# Builds the firmware for each target and trains the two-moons MLP on it under QEMU:
#   edge/firmware/run.sh [target...]   (default: all three)
# thumbv7em-none-eabihf (Cortex-M4F, QEMU mps2-an386), thumbv6m-none-eabi (Cortex-M0, QEMU
# microbit), riscv32imc-unknown-none-elf (QEMU virt). Fails if a build fails, a run exits
# non-zero (accuracy below 95%, an error, a fault), or a figure is missing; on the
# Cortex-M4 also if the heap is over 12 KiB; there it lists the f64 soft-float and libm
# routines linked and who calls them, and times a 64 x 64 x 64 matrix product
# (feature gemm-timing: instructions per multiply-add).
# Installs what it needs with apt if missing. Each run's output is kept in
# target/<target>.log (edge/trace-check.sh reads the Cortex-M4 one).
# Time on a 2-core machine, from clean: about 1.5 minutes per target (build-std compiles
# core and alloc for each); each run takes seconds.
set -eu

# The f64 pow/sqrt check fails the run only once the lead's change removing f64 math from
# the optimizers, initialisers and dropout is merged: then set this to 1.
FAIL_ON_F64_POW_SQRT="${FAIL_ON_F64_POW_SQRT:-1}"
# The Cortex-M4 targets of issue 10: flash <= 80 KiB at opt "s", heap <= 12 KiB.
FLASH_TARGET=81920
HEAP_TARGET=12288

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

# --- tools ---------------------------------------------------------------------------
need=""
command -v qemu-system-arm >/dev/null 2>&1 || need="$need qemu-system-arm"
command -v qemu-system-riscv32 >/dev/null 2>&1 || need="$need qemu-system-misc"
command -v ld.lld-19 >/dev/null 2>&1 || need="$need lld-19"
command -v llvm-nm-22 >/dev/null 2>&1 || need="$need llvm-22"
[ -x /usr/bin/rustc ] || need="$need rustc-web"
[ -x /usr/bin/cargo ] || need="$need cargo-web"
[ -d /usr/lib/rustlib/src/rust/library ] || need="$need rust-web-src"
if [ -n "$need" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $need
fi

# Debian's rustc brings the standard library's source; RUSTC_BOOTSTRAP lets it build
# core and alloc for the target (.cargo/config.toml: build-std, panic=immediate-abort).
cargo_fw() {
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" \
        nice -n 10 /usr/bin/cargo "$@"
}

qemu_for() {
    case "$1" in
        thumbv7em-none-eabihf) echo "qemu-system-arm -cpu cortex-m4 -machine mps2-an386" ;;
        thumbv6m-none-eabi) echo "qemu-system-arm -machine microbit" ;;
        riscv32imc-unknown-none-elf) echo "qemu-system-riscv32 -machine virt -bios none" ;;
        *) return 1 ;;
    esac
}

# Prints each f64 soft-float or libm routine the firmware calls, and its callers.
f64_routines() {
    llvm-objdump-22 -d --no-show-raw-insn -C "$1" | awk '
        /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); next }
        /\tb(l|\.w|lx)?\t/ {
            if (match($0, /<[^>+]*/)) {
                t = substr($0, RSTART + 1, RLENGTH - 1)
                if (t != fn && !seen[t, fn]++ &&
                    t ~ /^(__aeabi_(d|l2d|ul2d|f2d|i2d|ui2d)|__[a-z]*df[0-9]?$|libm::|pow|sqrt|exp|log|fmod|sin|cos|tan)/)
                    calls[t] = calls[t] "\n    <- " substr(fn, 1, 150)
            }
        }
        END { for (t in calls) print "  " t calls[t] }'
}

status=0
targets="${*:-thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imc-unknown-none-elf}"
for target in $targets; do
    echo "=== $target"
    failed=0
    qemu="$(qemu_for "$target")" || { echo "unknown target $target"; exit 2; }
    cargo_fw build --release --target "$target"
    elf="target/$target/release/firmware"
    llvm-size-22 "$elf"
    log="target/$target.log"
    # -icount shift=0: one instruction per nanosecond of virtual time (instruction counts).
    rc=0
    timeout 600 $qemu -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -icount shift=0 \
        -kernel "$elf" >"$log" 2>&1 || rc=$?
    cat "$log"
    if [ "$rc" -ne 0 ]; then
        echo "FAIL $target: QEMU exited with status $rc"
        status=1
        failed=1
        continue
    fi
    figures="$(grep '^heap_peak_bytes=' "$log" || true)"
    if [ -z "$figures" ]; then
        echo "FAIL $target: no figures line"
        status=1
        failed=1
        continue
    fi
    if [ "$target" = thumbv7em-none-eabihf ]; then
        heap="$(echo "$figures" | sed -n 's/.*heap_bytes=\([0-9]*\).*/\1/p')"
        flash="$(echo "$figures" | sed -n 's/.*flash_bytes=\([0-9]*\).*/\1/p')"
        if [ "$heap" -gt "$HEAP_TARGET" ]; then
            echo "FAIL $target: a heap of $heap B, over $HEAP_TARGET"
            status=1
            failed=1
        fi
        if [ "$flash" -gt "$FLASH_TARGET" ]; then
            echo "FAIL $target: flash $flash B, over the $FLASH_TARGET B target"
            status=1
            failed=1
        fi
        echo "f64 soft-float and libm routines called in $elf (and their callers):"
        f64_routines "$elf"
        if llvm-nm-22 -C "$elf" | grep -Eq ' (libm::math::(pow|sqrt)::(pow|sqrt)|libm::math::generic::sqrt::sqrt::<f64>|pow|sqrt)$'; then
            if [ "$FAIL_ON_F64_POW_SQRT" = 1 ]; then
                echo "FAIL $target: f64 pow or sqrt is linked"
                status=1
                failed=1
            else
                echo "NOTE $target: f64 pow or sqrt is linked (not enforced yet)"
            fi
        else
            echo "no f64 pow or sqrt linked"
        fi
        # Instructions per multiply-add of the portable micro-kernel (a second build).
        cargo_fw build --release --target "$target" --features gemm-timing
        rc=0
        timeout 600 $qemu -nographic -monitor none -serial none \
            -semihosting-config enable=on,target=native -icount shift=0 \
            -kernel "$elf" >"target/$target.gemm.log" 2>&1 || rc=$?
        cat "target/$target.gemm.log"
        if [ "$rc" -ne 0 ]; then
            echo "FAIL $target gemm timing: QEMU exited with status $rc"
            status=1
            failed=1
        fi
    fi
    [ "$failed" -ne 0 ] || echo "ok $target"
done
exit $status
