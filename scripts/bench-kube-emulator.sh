#!/usr/bin/env bash
# kube-emulator benchmark: is the emulator what a k8s-apply (or kubectl) benchmark measures?
# One emulator of its own (API only, --no-docker, free ports, the local CA), kubectl 1.32
# with a warm discovery cache, each figure the median of BENCH_RUNS runs (default 5):
#
#   kubectl version --client     kubectl's own start-up, no server at all
#   kubectl get ns               start-up + one request (the floor of any kubectl command)
#   apply, create                `kubectl apply --server-side -f` of 100 mixed objects (25 each
#                                of ConfigMap, Secret, Service, Deployment) into a new namespace
#   apply, no-op                 the same file again (nothing changes)
#   get -A, 1,000 objects        `kubectl get configmaps,secrets,services,deployments -A` once
#                                the namespaces hold 1,000 such objects
#
# For each it prints the share that is kubectl's own start-up (version --client / total), what
# is left above a `get ns` (the requests themselves: client and emulator together), and the
# time kubectl waited for responses (the sum of its `-v=6` request latencies, whole
# milliseconds, median of as many more runs): the emulator's share, TLS and loopback included.
#
# Measured on this 2-core machine (release build, load ~1; "Speed" in tests/emulators/kube/
# README.md): kubectl start-up 0.047 s; create 0.25-0.28 s of which the server 18-22 ms;
# no-op 0.26-0.34 s, server 14-36 ms; get -A of 1,000 0.15-0.18 s, server 45-53 ms.
#
# Needs: kubectl, bc, kube-emulator built (BIN, default target/release, else target/debug),
# the local CA of scripts/services (SHIPKIT_CA_FILE, its key beside it).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release}
RUNS=${BENCH_RUNS:-5}
if [[ ! -x $BIN/kube-emulator && -x target/debug/kube-emulator ]]; then
	echo "bench-kube-emulator: $BIN has no kube-emulator; using target/debug" >&2
	BIN=target/debug
fi
[[ -x $BIN/kube-emulator ]] || { echo "bench-kube-emulator: no kube-emulator in $BIN (cargo build --release -p kube-emulator)" >&2; exit 2; }
# shellcheck source=scripts/bench-kube-lib.sh
source scripts/bench-kube-lib.sh
bench_start_emulator "$BIN" --no-docker
k() { kubectl --cache-dir "$WORK/kube-cache" "$@"; }

# The median of $RUNS timings of "$@".
timed() {
	local i
	for i in $(seq "$RUNS"); do seconds "$@"; echo; done | median
}

# The milliseconds kubectl waited for the emulator's responses in one run of `k "$@"`.
server_ms() {
	k "$@" -v=6 2>&1 >/dev/null | grep -oE ' in [0-9]+ milliseconds' | awk '{s += $2} END {print s + 0}'
}

# The median of $RUNS server_ms of "$@".
server_ms_median() {
	local i
	for i in $(seq "$RUNS"); do server_ms "$@"; done | median
}

# The controllers answer new Deployments with ReplicaSets and pods for a few ticks: let them
# finish before the next measurement.
settle() { sleep 1.5; }

k get ns >/dev/null # warms the discovery cache
startup=$(timed k version --client)
get_ns=$(timed k get ns)
get_ns_ms=$(server_ms_median get ns)

# Create: each run into a namespace of its own (timed, then another with -v=6); no-op: the
# last one's file again.
creates=()
create_mss=()
for i in $(seq "$RUNS"); do
	bench_objects "create-$i" >"$WORK/create-$i.yaml"
	creates+=("$(seconds k apply --server-side -f "$WORK/create-$i.yaml")")
	settle
	bench_objects "server-side-$i" >"$WORK/server-side-$i.yaml"
	create_mss+=("$(server_ms apply --server-side -f "$WORK/server-side-$i.yaml")")
	settle
done
create=$(printf '%s\n' "${creates[@]}" | median)
create_ms=$(printf '%s\n' "${create_mss[@]}" | median)
noop=$(timed k apply --server-side -f "$WORK/create-$RUNS.yaml")
grep -q 'serverside-applied' "$WORK/last.out" || { echo "bench-kube-emulator: the no-op apply said: $(head -n 3 "$WORK/last.out")" >&2; exit 1; }
noop_ms=$(server_ms_median apply --server-side -f "$WORK/create-$RUNS.yaml")

# Exactly 1,000 objects to list: the namespaces above go, ten of 100 come.
# shellcheck disable=SC2046 # one argument per namespace
k delete ns $(k get ns -o name | grep -E '/(create|server-side)-' | cut -d/ -f2) >/dev/null
for i in $(seq 10); do bench_objects "list-$i" | k apply --server-side -f - >/dev/null; done
settle
get_all=$(timed k get configmaps,secrets,services,deployments -A --no-headers)
listed=$(wc -l <"$WORK/last.out")
get_all_ms=$(server_ms_median get configmaps,secrets,services,deployments -A --no-headers)

share() { echo "100 * $startup / $1" | bc -l | xargs printf '%.0f%%'; }
above() { echo "$1 - $get_ns" | bc -l | xargs printf '%.3f'; }
waited() { echo "100 * $1 / 1000 / $2" | bc -l | xargs printf '%d ms (%.0f%%)' "$1"; }
printf '%-34s %8s %17s %17s %18s\n' "kubectl 1.32 vs kube-emulator" "median" "kubectl start-up" "above \`get ns\`" "server responses"
printf '%-34s %7ss\n' "kubectl version --client" "$startup"
printf '%-34s %7ss %17s %16ss %18s\n' "kubectl get ns" "$get_ns" "$(share "$get_ns")" "0.000" "$(waited "$get_ns_ms" "$get_ns")"
printf '%-34s %7ss %17s %16ss %18s\n' "apply --server-side, 100 (create)" "$create" "$(share "$create")" "$(above "$create")" "$(waited "$create_ms" "$create")"
printf '%-34s %7ss %17s %16ss %18s\n' "apply --server-side, 100 (no-op)" "$noop" "$(share "$noop")" "$(above "$noop")" "$(waited "$noop_ms" "$noop")"
printf '%-34s %7ss %17s %16ss %18s\n' "get -A, $listed objects" "$get_all" "$(share "$get_all")" "$(above "$get_all")" "$(waited "$get_all_ms" "$get_all")"
echo "($RUNS runs each, $BIN/kube-emulator --no-docker)"
