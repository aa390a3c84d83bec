#!/usr/bin/env bash
# health-wait benchmarks, side by side in one run, every waiter with its default flags.
#
#  1. Detection latency: a target that turns healthy D seconds in (D = 2, 20, 60); how long
#     after that moment each waiter exits. Until D nothing listens on the port (connection
#     refused, as for a service still starting); from D it answers 200. Waiters:
#       health-wait --url URL                (defaults: every 250 ms, no backoff)
#       health-wait --tcp 127.0.0.1:PORT
#       wait-for-it -t 0 127.0.0.1:PORT      (Debian's; -t 0 because its default 15 s
#                                             timeout gives up before D = 20; 1 s sleep)
#       until curl -sf URL; do sleep 1; done
#     Every run of every waiter at every D runs at the same time (one server each), so the
#     whole part takes about a minute; the moment each target turns healthy is shifted by
#     a random 0-999 ms so that the waiters are caught at every point of their interval.
#     Goal: health-wait's p95 <= 300 ms at every D, and <= 0.3x wait-for-it's.
#  2. Fan-out: 1,000 targets (/t/N on 10 servers) turning healthy at random moments over
#     10 s, one health-wait with default flags: each target's detection latency (from the
#     moment it turned healthy to the moment health-wait recorded it, anchored at its exit,
#     so any exit time counts against it), CPU time, peak RSS and the request rate.
#     Goal: every one detected within 300 ms.
#
# The servers (bench-http-server) serve all their connections from one thread each, so
# that they do not take the CPU the waiters need. The machine is shared and noisy.
#
# Env: RUNS (10 per waiter and D), DELAYS ("2 20 60"), TARGETS (1000), SPREAD_MS (10000),
#      BIN (target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
HW="$BIN/health-wait"
SERVER=${SERVER:-$BIN/bench-http-server}
RUNS=${RUNS:-10}
DELAYS=${DELAYS:-2 20 60}
TARGETS=${TARGETS:-1000}
SPREAD_MS=${SPREAD_MS:-10000}
GOAL_MS=300
[[ -x $HW && -x $SERVER ]] || {
  echo "build first: cargo build --release -p health-wait -p shipkit-tests --bins" >&2
  exit 2
}
command -v curl >/dev/null || { echo "curl is needed for the comparison" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is needed to read health-wait's output" >&2; exit 2; }
if ! command -v wait-for-it >/dev/null; then
  echo "installing Debian's wait-for-it (apt-get)" >&2
  [[ $(id -u) == 0 ]] || { echo "wait-for-it is missing and installing it needs root" >&2; exit 2; }
  apt-get install -y -qq wait-for-it >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq wait-for-it >/dev/null; }
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { local t=$EPOCHREALTIME; echo $(( ${t/./} / 1000 )); }

# Starts a server (arguments: bench-http-server's) and sets $port. Not in a subshell, so its
# pid is remembered for the cleanup.
start_server() {
  local fifo; fifo=$(mktemp -u "$work/fifo.XXXX"); mkfifo "$fifo"
  "$SERVER" "$@" >"$fifo" 2>/dev/null & pids+=($!)
  read -r port <"$fifo"; rm -f "$fifo"
}

# Median, p95 (nearest rank) and max of the numbers on stdin, in ms.
summary() { sort -n | awk '{ a[NR] = $1 } END {
  p95 = int(NR * 0.95); if (p95 < NR * 0.95) p95++
  printf "%6d %6d %6d", a[int((NR + 1) / 2)], a[p95], a[NR] }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
p95() { sort -n | awk '{ a[NR] = $1 } END { i = int(NR * 0.95); if (i < NR * 0.95) i++; print a[i] }'; }

# ---- 1. detection latency ----------------------------------------------------------------
waiters=(hw-url hw-tcp wait-for-it curl-loop)
# Ports below the ephemeral range (the kernel never hands them to outgoing connections), one
# per waiter and run, bound only once the target turns healthy.
next_port=$((20000 + RANDOM % 10000))
waiter_pids=()
started=$(now_ms)
for delay in $DELAYS; do
  for _ in $(seq 1 "$RUNS"); do
    for waiter in "${waiters[@]}"; do
      healthy_at=$((started + delay * 1000 + RANDOM % 1000))
      start_server "$healthy_at" --closed-until-healthy "$next_port"
      next_port=$((next_port + 1))
      url="http://127.0.0.1:$port/"
      # shellcheck disable=SC2016 # the curl loop's $1 is expanded by the inner bash
      case $waiter in
        hw-url) cmd=("$HW" -q --url "$url") ;;
        hw-tcp) cmd=("$HW" -q --tcp "127.0.0.1:$port") ;;
        wait-for-it) cmd=(wait-for-it -q -t 0 "127.0.0.1:$port") ;;
        curl-loop) cmd=(bash -c 'until curl -sf -o /dev/null "$1"; do sleep 1; done' _ "$url") ;;
      esac
      ( "${cmd[@]}" >/dev/null 2>&1; echo $(( $(now_ms) - healthy_at )) >>"$work/$waiter-$delay" ) &
      waiter_pids+=($!)
    done
  done
done
echo "detection latency: a target turning healthy D s in, $RUNS runs per waiter and D, all at once" >&2
wait "${waiter_pids[@]}"
printf '\ndetection latency (ms from the moment the target turned healthy to the waiter'"'"'s exit)\n'
printf '%-5s %-26s %6s %6s %6s\n' D waiter median p95 max
for delay in $DELAYS; do
  for waiter in "${waiters[@]}"; do
    name=$waiter
    case $waiter in
      hw-url) name="health-wait --url" ;;
      hw-tcp) name="health-wait --tcp" ;;
      wait-for-it) name="wait-for-it -t 0" ;;
      curl-loop) name="curl loop, sleep 1" ;;
    esac
    printf '%-5s %-26s %s\n' "${delay}s" "$name" "$(summary <"$work/$waiter-$delay")"
  done
  wfi_median=$(median <"$work/wait-for-it-$delay")
  wfi_p95=$(p95 <"$work/wait-for-it-$delay")
  for waiter in hw-url hw-tcp; do
    awk -v m="$(median <"$work/$waiter-$delay")" -v p="$(p95 <"$work/$waiter-$delay")" \
      -v wm="$wfi_median" -v wp="$wfi_p95" -v w="$waiter" -v goal="$GOAL_MS" 'BEGIN {
      printf "      %s / wait-for-it: median %.2fx, p95 %.2fx   (goal: p95 <= %d ms: %s; <= 0.3x: %s)\n",
        w, m / wm, p / wp, goal, (p <= goal ? "met" : "NOT met"), (p / wp <= 0.3 ? "met" : "NOT met") }'
  done
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()

# ---- 2. fan-out: 1,000 targets turning healthy at random moments over 10 s --------------
servers=10
origin=$(( $(now_ms) + 1000 ))
awk -v n="$TARGETS" -v origin="$origin" -v spread="$SPREAD_MS" -v seed="$RANDOM" \
  'BEGIN { srand(seed); for (i = 0; i < n; i++) printf "%d %.0f\n", i, origin + int(rand() * spread) }' \
  >"$work/schedule"
ports=()
for _ in $(seq 1 "$servers"); do start_server 0 --schedule "$work/schedule"; ports+=("$port"); done
args=()
for i in $(seq 0 $((TARGETS - 1))); do args+=(--url "http://127.0.0.1:${ports[$((i % servers))]}/t/$i"); done
code=0
/usr/bin/time -f '%e %U %S %M' -o "$work/time" "$HW" -q "${args[@]}" >"$work/out.json" || code=$?
exited=$(now_ms)
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()
read -r wall user sys rss_kb <"$work/time"
# Each target's detection moment: health-wait's exit minus the longest elapsed time plus its
# own (the exit is the latest thing known for certain, so writing the output counts too).
jq -r '.health[] | "\(.target | sub(".*/t/"; "")) \(.elapsed_ms) \(.attempts) \(.healthy)"' \
  "$work/out.json" >"$work/detected"
awk -v exited="$exited" -v goal="$GOAL_MS" -v wall="$wall" '
  NR == FNR { at[$1] = $2; next }
  { id[FNR] = $1; elapsed[FNR] = $2; attempts += $3; if ($4 == "true") healthy++
    if ($2 > longest) longest = $2; n = FNR }
  END {
    for (i = 1; i <= n; i++) {
      lat = exited - longest + elapsed[i] - at[id[i]]
      printf "%.0f\n", lat > "/dev/stderr"
      if (lat > goal) late++
    }
    printf "%d %d %d %.0f\n", healthy, late + 0, attempts, attempts / wall
  }' "$work/schedule" "$work/detected" 2>"$work/latencies" >"$work/fanout"
read -r healthy late attempts rate <"$work/fanout"
printf '\nfan-out: %d targets turning healthy at random moments over %d s, health-wait defaults (exit %d)\n' \
  "$TARGETS" $((SPREAD_MS / 1000)) "$code"
printf '  healthy: %d of %d; detection latency ms (median p95 max): %s; over %d ms: %d (goal: 0)\n' \
  "$healthy" "$TARGETS" "$(summary <"$work/latencies")" "$GOAL_MS" "$late"
printf '  wall %.2f s, CPU %.2f s user + %.2f s sys, peak RSS %.1f MB; %d attempts (%d/s over all targets)\n' \
  "$wall" "$user" "$sys" "$(awk -v k="$rss_kb" 'BEGIN { print k / 1024 }')" "$attempts" "$rate"
