#!/usr/bin/env bash
# Start-up of every tool: `--help` and `--version` wall time (median of $RUNS runs), peak RSS
# and the release binary's size, side by side with the floor of starting any process here
# (/bin/true) and peer CLIs (curl, git). Before any flag is read a tool must not set up the
# AWS SDK, a TLS stack or a runtime. Goal (the issue's measurement, kept as the tools grow):
# at most 2 ms more than /bin/true (so a busy machine does not fail it) and under 12 MB.
#
# Env: RUNS (50), BIN (target/release), TOOLS (the six), GOAL_MS (2, over /bin/true),
#      GOAL_RSS_MB (12).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
RUNS=${RUNS:-50}
GOAL_MS=${GOAL_MS:-2}
GOAL_RSS_MB=${GOAL_RSS_MB:-12}
read -r -a tools <<<"${TOOLS:-img-build img-push ecs-roll k8s-apply release-tag health-wait}"
for tool in "${tools[@]}"; do
  [[ -x $BIN/$tool ]] || { echo "build first: cargo build --release -p $tool ($BIN/$tool is missing)" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "GNU time (/usr/bin/time, Debian package time) is needed for peak RSS" >&2; exit 2; }

# Median wall time of $RUNS runs of "$@", in ms with two decimals.
median_ms() {
  local times=() t0 t1
  "$@" >/dev/null 2>&1 || true
  for ((r = 0; r < RUNS; r++)); do
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || true
    t1=$EPOCHREALTIME
    times+=($(( ${t1/./} - ${t0/./} )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] / 1000 }'
}
peak_mb() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1 | awk '{ printf "%.1f", $1 / 1024 }'; }
size_mb() { stat -c %s "$1" | awk '{ printf "%.1f", $1 / 1048576 }'; }

floor=$(median_ms /bin/true)
printf '%-14s %10s %12s %10s %9s  %s\n' tool "--help ms" "--version ms" "peak MB" "size MB" goal
for tool in "${tools[@]}"; do
  bin=$BIN/$tool
  help=$(median_ms "$bin" --help)
  version=$(median_ms "$bin" --version)
  rss=$(peak_mb "$bin" --help)
  verdict=$(awk -v h="$help" -v v="$version" -v r="$rss" -v gm="$GOAL_MS" -v gr="$GOAL_RSS_MB" \
    -v f="$floor" 'BEGIN { print (h <= f + gm && v <= f + gm && r <= gr) ? "met" : "NOT met" }')
  printf '%-14s %10s %12s %10s %9s  %s\n' "$tool" "$help" "$version" "$rss" "$(size_mb "$bin")" "$verdict"
done
printf '%-14s %10s %12s %10s %9s\n' "/bin/true" "$floor" "-" "$(peak_mb /bin/true)" "$(size_mb /bin/true)"
for peer in curl git; do
  path=$(command -v "$peer" || true)
  [[ -n $path ]] || continue
  printf '%-14s %10s %12s %10s %9s\n' "$peer" "$(median_ms "$path" --help)" "$(median_ms "$path" --version)" \
    "$(peak_mb "$path" --version)" "$(size_mb "$path")"
done
echo "median of $RUNS runs each; goal: --help and --version <= /bin/true + $GOAL_MS ms, peak RSS <= $GOAL_RSS_MB MB"
