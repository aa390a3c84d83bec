#!/usr/bin/env bash
# health-wait benchmarks, side by side in one run (the machine is shared and noisy: only
# the ratios mean much).
#  1. detection latency: the server turns healthy at a known moment; how long until the
#     waiter exits, for health-wait and for `until curl -sf URL; do sleep I; done` with the
#     same interval. Goal: health-wait <= interval + 50 ms.
#  2. 200 targets vs 1 target, all healthy: wall time ratio. Goal <= 1.5x. Side by side,
#     the same ratio for `curl --parallel` (one process fetching the 200 URLs at once).
#     Every attempt is a fresh TCP connection (health-wait never reuses one: a pooled
#     connection could hide a listener that went away), so the 200-target case makes 200
#     connections and 200 requests. On a small loopback machine that work, not startup,
#     is most of the time, and curl's ratio shows the floor any client meets here.
#
# The servers (bench-http-server) serve all their connections from one thread each, so
# that they do not take the CPU the client being measured needs.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
HW="$BIN/health-wait"
SERVER="$BIN/bench-http-server"
INTERVAL_MS=${INTERVAL_MS:-1000}
RUNS=${RUNS:-6}
FANOUT_RUNS=${FANOUT_RUNS:-20}
[[ -x $HW && -x $SERVER ]] || { echo "build first: cargo build --release --workspace --bins" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed for the comparison" >&2; exit 2; }

now_ms() { date +%s%3N; }
interval_s=$(awk "BEGIN { print $INTERVAL_MS / 1000 }")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts a server that turns healthy at unix ms $1 (0 = now) and sets $port. Not called
# in a subshell, so its pid is remembered for the cleanup.
start_server() {
  local fifo; fifo=$(mktemp -u); mkfifo "$fifo"
  "$SERVER" "$1" >"$fifo" 2>/dev/null & pids+=($!)
  read -r port <"$fifo"; rm -f "$fifo"
}

# Detection latency: a run starts the waiter, then the server turns healthy 2.0–2.9 s
# later (a different phase each run, so the waiters are caught at different points of
# their interval).
declare -a hw_lat curl_lat
for run in $(seq 1 "$RUNS"); do
  offset=$((2000 + (run * 150) % 1000))
  healthy_at=$(( $(now_ms) + offset ))
  start_server "$healthy_at"
  "$HW" -q --url "http://127.0.0.1:$port/" --interval "${INTERVAL_MS}ms" --max-interval "${INTERVAL_MS}ms" --timeout 60s >/dev/null
  hw_lat+=($(( $(now_ms) - healthy_at )))
  healthy_at=$(( $(now_ms) + offset ))
  start_server "$healthy_at"
  until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do sleep "$interval_s"; done
  curl_lat+=($(( $(now_ms) - healthy_at )))
done
stats() { printf '%s\n' "$@" | sort -n | awk '{ s += $1; a[NR] = $1 } END { printf "mean %4d ms  max %4d ms", s / NR, a[NR] }'; }
echo "detection latency, interval ${INTERVAL_MS} ms, $RUNS runs each"
echo "  health-wait:      $(stats "${hw_lat[@]}")   (goal: max <= $((INTERVAL_MS + 50)) ms)"
echo "  curl+sleep loop:  $(stats "${curl_lat[@]}")"
hw_mean=$(printf '%s\n' "${hw_lat[@]}" | awk '{ s += $1 } END { print s / NR }')
curl_mean=$(printf '%s\n' "${curl_lat[@]}" | awk '{ s += $1 } END { print s / NR }')
awk "BEGIN { printf \"  ratio health-wait / curl loop (mean): %.2f\n\", $hw_mean / $curl_mean }"

# Fan-out: 200 targets (200 paths on 20 servers) against 1 target.
ports=()
for _ in $(seq 1 20); do start_server 0; ports+=("$port"); done
urls=()
for i in $(seq 0 199); do urls+=(--url "http://127.0.0.1:${ports[$((i % 20))]}/t/$i"); done
plain=()
for i in $(seq 0 199); do plain+=("http://127.0.0.1:${ports[$((i % 20))]}/t/$i"); done
# Microseconds: the 1-target case takes a few milliseconds.
time_us() { local s e; s=$(date +%s%6N); "$@" >/dev/null; e=$(date +%s%6N); echo $(( e - s )); }
one=(); many=(); curl_one=(); curl_many=()
for _ in $(seq 1 "$FANOUT_RUNS"); do
  one+=("$(time_us "$HW" -q --url "http://127.0.0.1:${ports[0]}/t/0")")
  many+=("$(time_us "$HW" -q "${urls[@]}")")
  curl_one+=("$(time_us curl -sf -o /dev/null "${plain[0]}")")
  curl_many+=("$(time_us curl -sfZ --no-progress-meter --parallel-immediate --parallel-max 200 -o /dev/null "${plain[@]}")")
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { print s / NR }'; }
ms_stats() { printf '%s\n' "$@" | sort -n | awk '{ s += $1; a[NR] = $1 } END { printf "mean %6.1f ms  max %6.1f ms", s / NR / 1000, a[NR] / 1000 }'; }
echo "fan-out, all healthy, $FANOUT_RUNS runs each"
echo "  health-wait, 1 target:       $(ms_stats "${one[@]}")"
echo "  health-wait, 200 targets:    $(ms_stats "${many[@]}")"
echo "  curl, 1 URL:                 $(ms_stats "${curl_one[@]}")"
echo "  curl --parallel, 200 URLs:   $(ms_stats "${curl_many[@]}")"
awk "BEGIN { printf \"  ratio 200 / 1 (mean): health-wait %.2f (goal <= 1.5), curl %.2f\n\", \
  $(mean "${many[@]}") / $(mean "${one[@]}"), $(mean "${curl_many[@]}") / $(mean "${curl_one[@]}") }"
