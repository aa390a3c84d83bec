#!/usr/bin/env bash
# Scale benchmark (issue 15): each tool at a small size and at the full size, in one run,
# against the local services (an ECS emulator and a Kubernetes emulator of its own, the
# local Docker Engine):
#
#   ecs-roll    SERVICES services (default "2 20") rolled in one call: each service (one task
#               of a busybox httpd image, its own task-definition family) is moved to another
#               tag of that image, with ecs-roll's defaults (--poll 5s, --stable-for 10s);
#   k8s-apply   OBJECTS objects of which WORKLOADS are Deployments (default "50 500" and
#               "3 30"): a Namespace, WORKLOADS Deployments of one busybox pod and a Service
#               each, ConfigMaps and Secrets for the rest, applied from one file and waited
#               for (the pods run as containers on the Engine);
#   img-build   CONTEXTS contexts (default "1 10") in one call, --no-cache, each FROM scratch
#               with busybox and a file of its own.
#
# Each run must complete: exit 0 and the envelope naming every item (every service
# `completed`, every object applied and the rollout `completed`, every image built). Printed
# per tool and size: wall time, time per item, peak RSS of the tool (GNU time's %M) and of
# the emulator where there is one (VmHWM); then, large against small, the per-item time
# ratio ("no worse than linear" is a per-item ratio <= 1: the time per item does not grow)
# and the RSS ratio (flat memory: far below the item ratio).
#
# Measured on this 2-core machine shared with other builds (load 10-13), debug build, two
# runs: ecs-roll 2 services 16-20 s, 20 services 21-31 s (per service 0.11-0.19x); k8s-apply
# 50 objects/3 Deployments 4.3 s, 500/30 14-15 s (per object 0.33-0.36x); img-build 1 context
# 0.8 s, 10 contexts 6.1-6.5 s (per context 0.71-0.80x). Peak RSS at the full size 17, 26
# and 17.5 MB: 1.08x, 1.17x, 1.03x the small size's. With WORKLOADS="30 90" OBJECTS="61 181"
# the kube-emulator's kubelet, which started pods one after the other, made the time per
# workload grow 1.5x (69-75 s for 90); since it starts them side by side: 0.71x (27 s).
#
# Env: BIN (default target/debug: no release build needed; said in the output), PARTS
# ("ecs k8s img"), SERVICES, OBJECTS, WORKLOADS, CONTEXTS (each "SMALL LARGE").
# Needs: the local services (scripts/services up: the Docker Engine, the local CA),
# busybox-static, jq, curl, python3, GNU time (installed here when missing, as root), and
# ecs-roll, ecs-emulator, k8s-apply, kube-emulator, img-build built in BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/debug}
PARTS=${PARTS:-ecs k8s img}
read -r SERVICES_SMALL SERVICES_LARGE <<<"${SERVICES:-2 20}"
read -r OBJECTS_SMALL OBJECTS_LARGE <<<"${OBJECTS:-50 500}"
read -r WORKLOADS_SMALL WORKLOADS_LARGE <<<"${WORKLOADS:-3 30}"
read -r CONTEXTS_SMALL CONTEXTS_LARGE <<<"${CONTEXTS:-1 10}"

say() { printf 'bench-scale: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

# Bad settings stop here, before anything is built or started.
for part in $PARTS; do
	[[ $part =~ ^(ecs|k8s|img)$ ]] || die "PARTS: unknown part $part (ecs, k8s, img)"
done
for size in SERVICES_SMALL SERVICES_LARGE OBJECTS_SMALL OBJECTS_LARGE WORKLOADS_SMALL \
	WORKLOADS_LARGE CONTEXTS_SMALL CONTEXTS_LARGE; do
	name=${size%_*}
	[[ ${!size:-} =~ ^[1-9][0-9]*$ ]] || die "$name=\"${!name:-}\": give two counts above 0, \"SMALL LARGE\""
done
for objects in "$OBJECTS_SMALL $WORKLOADS_SMALL" "$OBJECTS_LARGE $WORKLOADS_LARGE"; do
	read -r total workloads <<<"$objects"
	((total >= 1 + 2 * workloads)) ||
		die "OBJECTS $total is too few for WORKLOADS $workloads (a Namespace, and a Deployment and a Service each)"
done
for tool in ecs-roll ecs-emulator k8s-apply kube-emulator img-build; do
	[[ -x $BIN/$tool ]] || die "$BIN/$tool is missing: cargo build --workspace --bins (or set BIN)"
done
[[ -f target/services.env ]] || die "the local services are not up: scripts/services up"
set -a
# shellcheck disable=SC1091
source target/services.env
set +a
docker version >/dev/null 2>&1 || die "the Docker Engine is not reachable: scripts/services up docker"
[[ -x /bin/busybox ]] || die "/bin/busybox is missing: apt-get install busybox-static"
for cmd in jq curl python3; do command -v "$cmd" >/dev/null || die "$cmd is missing"; done
if [[ ! -x /usr/bin/time ]]; then
	say "installing Debian's time (GNU time, for peak RSS)"
	[[ $(id -u) == 0 ]] || die "/usr/bin/time is missing and installing it needs root"
	apt-get install -y -qq time >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi

# The Kubernetes part's emulator and work directory (WORK, removed at exit with the emulator).
# shellcheck source=scripts/bench-kube-lib.sh
source scripts/bench-kube-lib.sh
PREFIX="scale-$$"
ECS_PID=
stop_ecs_emulator() {
	if [[ -n $ECS_PID ]] && kill -0 "$ECS_PID" 2>/dev/null; then
		# SIGTERM: the emulator removes the containers it started.
		kill -TERM "$ECS_PID" 2>/dev/null || true
		wait "$ECS_PID" 2>/dev/null || true
	fi
	ECS_PID=
}

cleanup() {
	stop_ecs_emulator
	docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$PREFIX" |
		xargs -r docker rmi -f >/dev/null 2>&1 || true
	bench_cleanup
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The peak RSS (VmHWM, kB) and the CPU seconds so far of a running process.
proc_usage() {
	local hwm ticks
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0)
	# utime and stime, fields 14 and 15 of /proc/PID/stat (the command, field 2, has no space
	# here), in clock ticks.
	ticks=$(awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0)
	echo "$hwm $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')"
}

# timed LABEL CMD...: runs CMD with stdout to $WORK/LABEL.json and stderr to $WORK/LABEL.err;
# "seconds peak_rss_kb cpu_seconds exit_code" to $WORK/LABEL.time (never fails: the caller
# checks).
timed() {
	local label=$1 rc=0
	shift
	/usr/bin/time -f '%e %M %U %S' -o "$WORK/$label.rusage" "$@" </dev/null \
		>"$WORK/$label.json" 2>"$WORK/$label.err" || rc=$?
	# GNU time writes "Command exited with non-zero status N" first when it fails.
	tail -n 1 "$WORK/$label.rusage" |
		awk -v rc="$rc" '{ printf "%s %s %.2f %d\n", $1, $2, $3 + $4, rc }' >"$WORK/$label.time"
}

# The results table: one row per tool and size.
ROWS=()
# row TOOL SIZE ITEMS LABEL [EMULATOR_PID EMULATOR_CPU_BEFORE]: the emulator's peak RSS
# now and its CPU seconds since EMULATOR_CPU_BEFORE.
row() {
	local secs rss cpu rc emu_rss="" emu_cpu=""
	read -r secs rss cpu rc <"$WORK/$4.time"
	if [[ -n ${5:-} ]]; then
		read -r emu_rss emu_cpu < <(proc_usage "$5")
		emu_cpu=$(awk -v a="$emu_cpu" -v b="$6" 'BEGIN { printf "%.2f", a - b }')
	fi
	ROWS+=("$1|$2|$3|$secs|$rss|$cpu|$emu_rss|$emu_cpu")
}
# The CPU seconds of process $1 so far.
cpu_of() { proc_usage "$1" | cut -d' ' -f2; }

# The busybox httpd image every ECS task and Kubernetes pod runs, under two tags.
IMAGE="$PREFIX/web"
mkdir -p "$WORK/web/www"
cp /bin/busybox "$WORK/web/busybox"
echo ok >"$WORK/web/www/health"
printf 'FROM scratch\nCOPY busybox /busybox\nCOPY www /www\nENTRYPOINT ["/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n' \
	>"$WORK/web/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q --no-cache -t "$IMAGE:v1" "$WORK/web" >/dev/null 2>&1
docker tag "$IMAGE:v1" "$IMAGE:v2"

# ------------------------------------------------------------------------------ ecs-roll --

start_ecs_emulator() {
	local port
	port=$(free_port)
	"$BIN/ecs-emulator" --listen "127.0.0.1:$port" --clusters scale >"$WORK/ecs-emulator.log" 2>&1 &
	ECS_PID=$!
	for _ in $(seq 100); do
		grep -q "listening on" "$WORK/ecs-emulator.log" && break
		kill -0 "$ECS_PID" 2>/dev/null || { cat "$WORK/ecs-emulator.log" >&2; exit 1; }
		sleep 0.1
	done
	grep -q "listening on" "$WORK/ecs-emulator.log" || { cat "$WORK/ecs-emulator.log" >&2; exit 1; }
	export AWS_ENDPOINT_URL_ECS="http://127.0.0.1:$port"
}

# ecs OPERATION JSON: one ECS call to the emulator (it accepts any signature or none).
ecs() {
	curl -fsS "$AWS_ENDPOINT_URL_ECS" -H 'Content-Type: application/x-amz-json-1.1' \
		-H "X-Amz-Target: AmazonEC2ContainerServiceV20141113.$1" -d "$2"
}

# ecs_services N: services svc-1..svc-N on IMAGE:v1, one task each, and waits until every
# one has reached a steady state (its only deployment COMPLETED, its task running).
ecs_services() {
	local n=$1 i
	for i in $(seq "$n"); do
		ecs RegisterTaskDefinition "$(jq -nc --arg family "$PREFIX-web-$i" --arg image "$IMAGE:v1" '{
			family: $family, networkMode: "bridge", requiresCompatibilities: ["EC2"],
			containerDefinitions: [{name: "web", image: $image, essential: true, memory: 64,
				portMappings: [{containerPort: 8080, hostPort: 0, protocol: "tcp"}]}]}')" >/dev/null
		ecs CreateService "$(jq -nc --arg name "svc-$i" --arg td "$PREFIX-web-$i" '{
			cluster: "scale", serviceName: $name, taskDefinition: $td, desiredCount: 1,
			launchType: "EC2"}')" >/dev/null
	done
	local stable first names
	for _ in $(seq 240); do
		stable=0
		# DescribeServices takes at most 10 services, as ECS's does.
		for ((first = 1; first <= n; first += 10)); do
			names=$(seq "$first" "$((first + 9 < n ? first + 9 : n))" | jq -R '"svc-" + .' | jq -sc .)
			stable=$((stable + $(ecs DescribeServices "{\"cluster\": \"scale\", \"services\": $names}" |
				jq '[.services[] | select(.runningCount == 1 and (.deployments | length) == 1
					and .deployments[0].rolloutState == "COMPLETED")] | length')))
		done
		((stable == n)) && return 0
		sleep 0.5
	done
	die "the $n services of the ECS emulator did not become stable in 120 s"
}

# ecs_part N: rolls N services in one ecs-roll call on an emulator of its own; checks it.
ecs_part() {
	local n=$1 label="ecs-$1" args=() i
	start_ecs_emulator
	ecs_services "$n"
	say "ecs-roll: $n services stable on $IMAGE:v1; rolling them to v2 in one call"
	for i in $(seq "$n"); do args+=(--service "svc-$i"); done
	local emu_cpu
	emu_cpu=$(cpu_of "$ECS_PID")
	timed "$label" "$BIN/ecs-roll" -q --cluster scale "${args[@]}" --container "web=$IMAGE:v2"
	local rc completed
	rc=$(awk '{ print $4 }' "$WORK/$label.time")
	completed=$(jq '[.deployments[] | select(.outcome == "completed" and (.task_definition | test(":2$")))
		| .service] | unique | length' "$WORK/$label.json" 2>/dev/null || echo 0)
	if ((rc != 0 || completed != n)); then
		say "ecs-roll with $n services: exit $rc, $completed of $n completed on a new revision:"
		tail -n 20 "$WORK/$label.err" >&2
		exit 1
	fi
	row ecs-roll "$n services" "$n" "$label" "$ECS_PID" "$emu_cpu"
	stop_ecs_emulator
}

# ----------------------------------------------------------------------------- k8s-apply --

# k8s_objects NS OBJECTS WORKLOADS: the objects, as YAML on stdout: the Namespace, WORKLOADS
# Deployments (one pod of IMAGE:v1) each with its Service, and ConfigMaps and Secrets, one
# after the other, for the rest.
k8s_objects() {
	local ns=$1 total=$2 workloads=$3 i rest
	printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n' "$ns"
	for i in $(seq "$workloads"); do
		printf -- '---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app-%d, namespace: %s}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: app-%d}}\n  template:\n    metadata: {labels: {app: app-%d}}\n    spec: {containers: [{name: app, image: "%s"}]}\n' \
			"$i" "$ns" "$i" "$i" "$IMAGE:v1"
		printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: app-%d, namespace: %s}\nspec: {selector: {app: app-%d}, ports: [{port: 80, targetPort: 8080}]}\n' \
			"$i" "$ns" "$i"
	done
	rest=$((total - 1 - 2 * workloads))
	for i in $(seq "$rest"); do
		if ((i % 2)); then
			printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-%d, namespace: %s}\ndata: {LOG_LEVEL: info, N: "%d"}\n' "$i" "$ns" "$i"
		else
			printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: secret-%d, namespace: %s}\nstringData: {password: "pw-%d"}\n' "$i" "$ns" "$i"
		fi
	done
}

# k8s_part OBJECTS WORKLOADS: applies them with k8s-apply (waiting for every rollout) on a
# kube-emulator of its own whose pods run on the Engine; checks it.
k8s_part() {
	local total=$1 workloads=$2 label="k8s-$1"
	bench_start_emulator "$BIN"
	k8s_objects "$PREFIX-$total" "$total" "$workloads" >"$WORK/$label.yaml"
	say "k8s-apply: $total objects, $workloads Deployments"
	local emu_cpu
	emu_cpu=$(cpu_of "$EMULATOR_PID")
	timed "$label" "$BIN/k8s-apply" -q -f "$WORK/$label.yaml" --timeout 10m
	local rc applied outcome
	rc=$(awk '{ print $4 }' "$WORK/$label.time")
	applied=$(jq '[.deployments[0].resources[] | select(.action == "created")] | length' "$WORK/$label.json" 2>/dev/null || echo 0)
	outcome=$(jq -r '.deployments[0].outcome' "$WORK/$label.json" 2>/dev/null || echo "?")
	if ((rc != 0 || applied != total)) || [[ $outcome != completed ]]; then
		say "k8s-apply with $total objects: exit $rc, $applied of $total created, outcome $outcome:"
		tail -n 20 "$WORK/$label.err" >&2
		exit 1
	fi
	row k8s-apply "$total objects, $workloads workloads" "$total" "$label" "$EMULATOR_PID" "$emu_cpu"
	kill "$EMULATOR_PID" 2>/dev/null || true
	wait "$EMULATOR_PID" 2>/dev/null || true
	EMULATOR_PID=
}

# ----------------------------------------------------------------------------- img-build --

# img_part N: N contexts in one img-build call, nothing reused; checks every image was built.
img_part() {
	local n=$1 label="img-$1" args=() i dir
	for i in $(seq "$n"); do
		dir="$WORK/img-$n/$PREFIX-img-$n-$i"
		mkdir -p "$dir"
		cp /bin/busybox "$dir/busybox"
		echo "context $i of $n, run $$" >"$dir/id.txt"
		printf 'FROM scratch\nCOPY busybox /busybox\nCOPY id.txt /id.txt\nENTRYPOINT ["/busybox", "cat", "/id.txt"]\n' >"$dir/Dockerfile"
		args+=(--context "$dir")
	done
	say "img-build: $n contexts"
	timed "$label" "$BIN/img-build" -q --no-cache --tag scale "${args[@]}"
	local rc built
	rc=$(awk '{ print $4 }' "$WORK/$label.time")
	built=$(jq '[.images[] | select(.cache_hit == false and (.id | startswith("sha256:")))] | length' \
		"$WORK/$label.json" 2>/dev/null || echo 0)
	if ((rc != 0 || built != n)); then
		say "img-build with $n contexts: exit $rc, $built of $n built:"
		tail -n 20 "$WORK/$label.err" >&2
		exit 1
	fi
	row img-build "$n contexts" "$n" "$label"
}

# -------------------------------------------------------------------------------- report --

say "binaries: $BIN ($(case $BIN in *release*) echo release ;; *debug*) echo debug ;; *) echo as built ;; esac) build); parts: $PARTS"
for part in $PARTS; do
	case $part in
	ecs) ecs_part "$SERVICES_SMALL"; ecs_part "$SERVICES_LARGE" ;;
	k8s) k8s_part "$OBJECTS_SMALL" "$WORKLOADS_SMALL"; k8s_part "$OBJECTS_LARGE" "$WORKLOADS_LARGE" ;;
	img) img_part "$CONTEXTS_SMALL"; img_part "$CONTEXTS_LARGE" ;;
	esac
done

mb() { awk -v k="$1" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }'; }
printf '\nScale: each tool at a small and the full size, one call each, every item completed\n'
printf '(binaries: %s; load when done: %s)\n\n' "$BIN" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %-30s %8s %9s %8s %8s %9s %8s\n' "" "" "" "" "tool" "tool" "emulator" "emulator"
printf '%-10s %-30s %8s %9s %8s %8s %9s %8s\n' tool size "wall s" "s / item" "CPU s" "RSS MB" "CPU s" "RSS MB"
for r in "${ROWS[@]}"; do
	IFS='|' read -r tool size items secs rss cpu emu_rss emu_cpu <<<"$r"
	printf '%-10s %-30s %8.2f %9.3f %8.2f %8s %9s %8s\n' "$tool" "$size" "$secs" \
		"$(awk -v s="$secs" -v n="$items" 'BEGIN { print s / n }')" "$cpu" "$(mb "$rss")" \
		"${emu_cpu:--}" "$(mb "$emu_rss")"
done
printf '\nlarge / small   %-14s %-16s %-14s %s\n' "items" "time per item" "tool RSS" "verdict"
for ((i = 0; i + 1 < ${#ROWS[@]}; i += 2)); do
	IFS='|' read -r tool _ n1 s1 m1 _ <<<"${ROWS[i]}"
	IFS='|' read -r _ _ n2 s2 m2 _ <<<"${ROWS[i + 1]}"
	awk -v t="$tool" -v n1="$n1" -v s1="$s1" -v m1="$m1" -v n2="$n2" -v s2="$s2" -v m2="$m2" 'BEGIN {
		per = (s2 / n2) / (s1 / n1)
		printf "  %-13s %-14s %-16s %-14s %s\n", t, sprintf("%.0fx", n2 / n1), sprintf("%.2fx", per),
			sprintf("%.2fx", m2 / m1), (per <= 1 ? "time no worse than linear" : per <= 1.1 ? "about linear (noise: +10% or less)" : "per-item time GROWS")
	}'
done
echo
