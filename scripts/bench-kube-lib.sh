# shellcheck shell=bash
# scripts/bench-kube-lib.sh — what the Kubernetes benchmarks share (sourced, not run):
# a work directory removed at exit, a kube-emulator of their own on free ports with the local
# CA, and the 100 mixed objects they apply.
#
#   bench_start_emulator BIN [FLAGS...]   starts BIN/kube-emulator (cluster `bench`), waits for
#                                         its kubeconfig, exports KUBECONFIG; EMULATOR_PID
#   bench_objects NS                      namespace NS and 25 each of ConfigMap, Secret,
#                                         Service and Deployment in it, as YAML on stdout
#
# Needs SHIPKIT_CA_FILE (source target/services.env), its key beside it.

CA=${SHIPKIT_CA_FILE:?source target/services.env (scripts/services up) for the local CA}
WORK=$(mktemp -d)
EMULATOR_PID=
bench_cleanup() {
	if [[ -n $EMULATOR_PID ]]; then
		kill "$EMULATOR_PID" 2>/dev/null || true
		wait "$EMULATOR_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap bench_cleanup EXIT

bench_start_emulator() {
	local bin=$1
	shift
	rm -f "$WORK/kubeconfig"
	"$bin/kube-emulator" --listen 127.0.0.1:0 --cluster bench=127.0.0.1:0 \
		--ca-cert "$CA" --kubeconfig "$WORK/kubeconfig" "$@" 2>"$WORK/emulator.log" &
	EMULATOR_PID=$!
	local _
	for _ in $(seq 100); do
		[[ -s $WORK/kubeconfig ]] && break
		sleep 0.1
	done
	[[ -s $WORK/kubeconfig ]] || {
		cat "$WORK/emulator.log" >&2
		exit 1
	}
	export KUBECONFIG=$WORK/kubeconfig
}

bench_objects() {
	local ns=$1 i
	printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n' "$ns"
	for i in $(seq 25); do
		printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-%d, namespace: %s}\ndata: {LOG_LEVEL: info, N: "%d"}\n' "$i" "$ns" "$i"
		printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: secret-%d, namespace: %s}\nstringData: {password: "pw-%d"}\n' "$i" "$ns" "$i"
		printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, namespace: %s}\nspec: {selector: {app: app-%d}, ports: [{port: 80, targetPort: 8080}]}\n' "$i" "$ns" "$i"
		printf -- '---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app-%d, namespace: %s}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: app-%d}}\n  template:\n    metadata: {labels: {app: app-%d}}\n    spec: {containers: [{name: app, image: "nginx:1.27"}]}\n' "$i" "$ns" "$i" "$i"
	done
}

# seconds CMD...: the seconds (3 decimals) CMD takes; its output goes to $WORK/last.out and
# $WORK/last.log (shown, and the benchmark stopped, when it fails).
seconds() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >"$WORK/last.out" 2>"$WORK/last.log" || {
		cat "$WORK/last.log" >&2
		exit 1
	}
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l | xargs printf '%.3f'
}

# The median of the numbers on stdin.
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
