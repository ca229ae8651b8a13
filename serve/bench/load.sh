#!/usr/bin/env bash
# Load test: the Rust service (serve) and the same model on FastAPI + uvicorn + PyTorch
# (torch_server.py), each driven on loopback by wrk with 64 connections for DURATION
# seconds, POSTing one digit image per request. Prints one line per system:
#
#   serve system=... rps=... p50_ms=... p99_ms=... rss_start_kb=... rss_peak_kb=...
#
# RSS is summed over the service's processes (uvicorn's master and its workers): VmRSS
# once the service answers /healthz, VmHWM (each process's peak) when the load ends.
# The load generator runs on the same machine as the service: on a small machine it
# takes CPU from both alike. Not run in CI.
#
#   bash serve/bench/load.sh              # the MLP
#   MODEL=cnn bash serve/bench/load.sh    # the CNN
#
# Settings (environment): MODEL (mlp|cnn), DURATION (10), CONNECTIONS (64), WRK_THREADS
# (2), SERVE_WORKERS (1), MAX_BATCH (32), MAX_WAIT_US (200), UVICORN_WORKERS (2),
# TORCH_THREADS (1 per uvicorn worker), PYTHON (/tmp/torchvenv/bin/python, with torch,
# fastapi, uvicorn and safetensors; uvloop and httptools are used if installed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
MODEL=${MODEL:-mlp}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}
SERVE_WORKERS=${SERVE_WORKERS:-1}
MAX_BATCH=${MAX_BATCH:-32}
MAX_WAIT_US=${MAX_WAIT_US:-200}
UVICORN_WORKERS=${UVICORN_WORKERS:-2}
export TORCH_THREADS=${TORCH_THREADS:-1}
PYTHON=${PYTHON:-/tmp/torchvenv/bin/python}
SERVE_PORT=${SERVE_PORT:-18080}
TORCH_PORT=${TORCH_PORT:-18081}

command -v wrk >/dev/null || { echo "load.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
"$PYTHON" -c 'import torch, fastapi, uvicorn, safetensors' ||
    { echo "load.sh: $PYTHON lacks torch, fastapi, uvicorn or safetensors" >&2; exit 1; }

case $MODEL in
mlp) example=digits ;;
cnn) example=digits_cnn ;;
*) echo "load.sh: MODEL=$MODEL: expected mlp or cnn" >&2; exit 1 ;;
esac
weights=${WEIGHTS:-$repo/target/$example.safetensors}
if [ ! -f "$weights" ]; then
    echo "== training the weights: cargo run --release --example $example" >&2
    (cd "$repo" && cargo run --release --example "$example" >&2)
fi
echo "== cargo build --release (serve/)" >&2
(cd "$repo/serve" && cargo build --release >&2)

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

gzip -dc "$repo/examples/data/digits.csv.gz" >"$work/digits.csv"
# The first image of the data set, raw pixels 0..16, as the request body.
row=$(head -n 1 "$work/digits.csv" | cut -d, -f1-64)
body="{\"pixels\": [$row]}"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$body'
LUA

# The service's process and its descendants.
tree() {
    local p=$1
    echo "$p"
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done
}
# Sum of a /proc/PID/status field (kB) over the tree.
rss() {
    local field=$1 total=0 v
    for p in $(tree "$2"); do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' /proc/"$p"/status 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
wait_healthy() {
    for _ in $(seq 600); do
        curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "load.sh: nothing answers on port $1" >&2
    return 1
}
# wrk's latency ("1.23ms", "456.00us", "1.01s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}
drive() { # system port pid
    local start out rps p50 p99 peak errors
    start=$(rss VmRSS "$3")
    out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$work/post.lua" \
        "http://127.0.0.1:$2/predict")
    echo "$out" >"$work/wrk-$1.txt"
    peak=$(rss VmHWM "$3")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    errors=$(awk '/Non-2xx or 3xx responses:/ { print $NF } /Socket errors:/ { print "socket:" $0 }' <<<"$out")
    echo "serve system=$1 rps=$rps p50_ms=$p50 p99_ms=$p99 rss_start_kb=$start rss_peak_kb=$peak"
    [ -z "$errors" ] || echo "load.sh: $1: $errors" >&2
}

# Both services must give the same classes: the first 50 images, raw pixels.
agree() {
    head -n 50 "$work/digits.csv" | "$PYTHON" -c '
import json, sys, urllib.request
ports = sys.argv[1:]
same = total = 0
for line in sys.stdin:
    pixels = [float(v) for v in line.split(",")[:64]]
    classes = []
    for port in ports:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"pixels": pixels}).encode(), headers={"Content-Type": "application/json"})
        classes.append(json.load(urllib.request.urlopen(req))["class"])
    same += classes[0] == classes[1]
    total += 1
print(f"load.sh: serve and torch agree on {same}/{total} images", file=sys.stderr)
sys.exit(0 if same == total else 1)
' "$@"
}

"$repo/serve/target/release/serve" --model "$MODEL" --weights "$weights" \
    --addr "127.0.0.1:$SERVE_PORT" --workers "$SERVE_WORKERS" --max-batch "$MAX_BATCH" \
    --max-wait-us "$MAX_WAIT_US" 2>"$work/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
(cd "$here" && WEIGHTS="$weights" MODEL="$MODEL" exec "$PYTHON" -m uvicorn torch_server:app \
    --host 127.0.0.1 --port "$TORCH_PORT" --workers "$UVICORN_WORKERS" --no-access-log \
    --log-level warning) 2>"$work/torch.log" &
torch_pid=$!
pids+=("$torch_pid")
wait_healthy "$SERVE_PORT"
wait_healthy "$TORCH_PORT"
agree "$SERVE_PORT" "$TORCH_PORT"
loop=$("$PYTHON" -c 'import importlib.util as u; print("uvloop" if u.find_spec("uvloop") else "asyncio", "httptools" if u.find_spec("httptools") else "h11")')
echo "load.sh: $MODEL, wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s; serve --workers $SERVE_WORKERS --max-batch $MAX_BATCH --max-wait-us $MAX_WAIT_US; uvicorn --workers $UVICORN_WORKERS ($loop), torch threads $TORCH_THREADS per worker; $(nproc) CPUs" >&2

drive serve "$SERVE_PORT" "$serve_pid"
drive torch "$TORCH_PORT" "$torch_pid"
# serve's own view of the batches it ran
curl -fsS "http://127.0.0.1:$SERVE_PORT/metrics" | awk '/^serve_batch_rows_(sum|count)/ { v[$1] = $2 }
    END { if (v["serve_batch_rows_count"] > 0) printf "load.sh: serve ran %d batches, %.2f rows each on average\n",
          v["serve_batch_rows_count"], v["serve_batch_rows_sum"] / v["serve_batch_rows_count"] > "/dev/stderr" }'
