#!/usr/bin/env bash
# The WebAssembly check (issue 10, items 6 and 9), self-contained for CI:
#  1. installs what it needs from Debian if missing (rustc-web cargo-web rust-web-src
#     lld-19 binaryen nodejs npm chromium) and playwright-core from npm (into
#     edge/web/node_modules, ignored by git);
#  2. prints the host's trace (edge/moons, example `trace`);
#  3. builds moons_web.wasm (build.sh) and trains it in Node (train.mjs): trace, accuracy,
#     planned bytes, size before and after wasm-opt; fails below 95% accuracy;
#  4. fails unless the Node trace (every `epoch N loss X.XXXX` line and the accuracy line)
#     equals the host's; then compares every epoch's loss bits with the host's portable
#     GEMM kernel (examples/bits.rs), which fails too if they differ, and runs the crate's
#     test of its exports on the host;
#  5. serves the page on a free localhost port, trains it in headless Chromium
#     (check-page.mjs), fails below 95% or if the page's trace differs from the host's, and
#     saves edge/web/screenshot.png.
# Exits non-zero on any failure. Takes about 2 minutes on 2 cores from a fresh clone
# (1 min 45 s measured with CARGO_BUILD_JOBS=1; most of it the builds), 15 s when built.
set -euo pipefail
cd "$(dirname "$0")"
web=$(pwd)
out=$web/target/check
mkdir -p "$out"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
[ -x /usr/bin/rustc ] || need+=(rustc-web)
[ -x /usr/bin/cargo ] || need+=(cargo-web)
[ -d /usr/lib/rustlib/src/rust/library ] || need+=(rust-web-src)
command -v wasm-ld-19 >/dev/null || need+=(lld-19)
command -v wasm-opt >/dev/null || need+=(binaryen)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ ! -f node_modules/playwright-core/package.json ]; then
  npm install --no-save --no-audit --no-fund --no-package-lock playwright-core@1.64.1
fi

build_jobs=${CARGO_BUILD_JOBS:-1}

echo "== host trace (edge/moons, cargo run --release --example trace --features std)"
(cd ../moons && CARGO_BUILD_JOBS=$build_jobs cargo run -q --release --example trace --features std) \
  | tee "$out/host.txt"

echo "== wasm build"
CARGO_BUILD_JOBS=$build_jobs ./build.sh -q
echo "== node train.mjs"
node train.mjs moons_web.wasm target/wasm32-unknown-unknown/release/moons_web.wasm | tee "$out/node.txt"

trace() { grep -E '^(epoch [0-9]+ loss |accuracy [0-9]+/[0-9]+$)' "$1"; }
status=0

opt_bytes=$(stat -c %s moons_web.wasm)
if [ "$opt_bytes" -le 100000 ]; then
  echo "size: $opt_bytes B after wasm-opt, within the 100,000 B target"
else
  echo "FAIL size: $opt_bytes B after wasm-opt, above the 100,000 B target (issue 10)"
  status=1
fi
if diff <(trace "$out/host.txt") <(trace "$out/node.txt") >"$out/node.diff"; then
  echo "determinism: the Node trace equals the host's ($(trace "$out/node.txt" | wc -l) lines)"
else
  echo "determinism: the Node trace differs from the host's (< host, > node):"
  cat "$out/node.diff"
  status=1
fi

echo "== loss bits: host with the portable GEMM kernel (examples/bits.rs) vs wasm"
CARGO_BUILD_JOBS=$build_jobs cargo run -q --release --example bits | tee "$out/bits.txt"
if diff <(grep '^loss_bits=' "$out/bits.txt") <(grep '^loss_bits=' "$out/node.txt") >/dev/null; then
  echo "determinism: every epoch's f32 loss is bit-identical in wasm and on the host's portable kernel"
else
  echo "determinism: the wasm loss bits differ from the host's portable kernel:"
  grep '^loss_bits=' "$out/node.txt"
  status=1
fi
echo "== the exports' test (host)"
CARGO_BUILD_JOBS=$build_jobs cargo test -q

echo "== headless Chromium"
python3 -u -m http.server 0 --bind 127.0.0.1 >"$out/http.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
port=
for _ in $(seq 50); do
  port=$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' "$out/http.log" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "the HTTP server did not start:"
  cat "$out/http.log"
  exit 1
fi
node check-page.mjs "http://127.0.0.1:$port/index.html" screenshot.png | tee "$out/page.txt"
if diff <(grep -E '^epoch [0-9]+ loss ' "$out/host.txt") \
        <(grep -E '^epoch [0-9]+ loss ' "$out/page.txt") >"$out/page.diff"; then
  echo "determinism: the page's trace equals the host's"
else
  echo "determinism: the page's trace differs from the host's (< host, > page):"
  cat "$out/page.diff"
  status=1
fi
echo "screenshot: edge/web/screenshot.png ($(stat -c %s screenshot.png) bytes)"
exit $status
