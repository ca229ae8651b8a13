#!/usr/bin/env bash
# Builds moons_web.wasm (no_std + alloc, wasm32-unknown-unknown) with Debian's rustc and
# the standard library's source (../../../shared/EDGE.md), then shrinks it with
# Debian's binaryen. Writes:
#   target/wasm32-unknown-unknown/release/moons_web.wasm   the linker's output
#   moons_web.wasm                                          after wasm-opt -Oz (what the page loads)
# Needs: rustc-web cargo-web rust-web-src lld-19 binaryen (check.sh installs them).
set -euo pipefail
cd "$(dirname "$0")"

# -Cpanic=immediate-abort: a panic is a trap, with no message formatting or unwinding code
# (the successor of build-std's old panic_immediate_abort feature).
# -Zfmt-debug=none: `{:?}` prints nothing. Error messages built with Debug (shapes, names)
# are never shown by this module (it returns -1, NaN or null), and the Debug code of every
# op, shape and error would otherwise be linked.
# -Zlocation-detail=none: #[track_caller] locations carry no file, line or column, so no
# file-name strings are linked (only the error messages this module never shows name them).
# build-std feature optimize_for_size: core and alloc pick their smaller implementations
# (sorting, integer formatting).
# --cfg tapegrad_no_second_order: the module never differentiates a gradient, so
# cross_entropy's second-order VJP and the ops only it uses are not linked (11,344 B of
# the optimised module; see tapegrad's src/ops/loss.rs).
# -zstack-size=16384: a 16 KiB shadow stack instead of the default 1 MiB (it holds only
# the locals whose address is taken; training, accuracy and classify ran with 4 KiB). The
# stack sits below the data, so an overflow traps instead of corrupting the heap.
RUSTFLAGS="-C linker=wasm-ld-19 -C link-arg=-zstack-size=16384 -Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none --cfg tapegrad_no_second_order ${WEB_RUSTFLAGS:-}" \
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
  /usr/bin/cargo build --release --target wasm32-unknown-unknown -Zbuild-std=core,alloc -Zbuild-std-features=optimize_for_size "$@"

# The features rustc 1.96 enables for wasm32-unknown-unknown. Not --all-features: with it,
# wasm-opt 108 may emit typed function references, which Node 20 refuses.
# --flatten --rereloop -Oz --converge: after the first -Oz, the control flow is flattened
# and rebuilt by binaryen's relooper, then -Oz again, the whole sequence repeated until it
# shrinks no more (-635 B on 100,339 B; the same instructions' semantics, so the same bits).
wasm-opt -Oz --flatten --rereloop -Oz --converge \
  --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
  --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
  target/wasm32-unknown-unknown/release/moons_web.wasm -o moons_web.wasm

# rustc exports __heap_base and __data_end from every wasm32 cdylib; nothing here reads
# them. wasm-metadce drops every export but the module's own functions (the
# #[no_mangle] fns of src/lib.rs) and its memory, then -Oz again removes what only they
# reached (-330 B on 100,042 B).
exports=$(grep -A1 '#\[no_mangle\]' src/lib.rs | sed -n 's/.*fn \([a-z_0-9]*\).*/\1/p')
graph='[{"name": "root", "root": true, "reaches": ["memory"'
for e in $exports; do graph="$graph, \"$e\""; done
graph="$graph]}, {\"name\": \"memory\", \"export\": \"memory\"}"
for e in $exports; do graph="$graph, {\"name\": \"$e\", \"export\": \"$e\"}"; done
graph="$graph]"
features="--enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
  --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types"
printf '%s' "$graph" > target/metadce-graph.json
# shellcheck disable=SC2086
wasm-metadce moons_web.wasm --graph-file target/metadce-graph.json -o moons_web.wasm $features >/dev/null
# shellcheck disable=SC2086
wasm-opt -Oz $features moons_web.wasm -o moons_web.wasm
