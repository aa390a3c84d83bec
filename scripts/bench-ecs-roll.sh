#!/usr/bin/env bash
# ecs-roll benchmark: how soon a failing deployment is reported, against
# `aws ecs wait services-stable` (the AWS CLI's waiter), side by side in one run, on an
# ECS emulator of its own (tests/emulators/ecs, default tick and stop timeout).
#
# The same service (2 tasks behind a load balancer like the demo's, rolling 100/200, circuit
# breaker off: ECS's default, and the case where nothing but the watcher notices) is moved from a good task definition to one
# whose container exits 3 half a second after it starts:
#   1. ecs-roll --container web=<crashing image> --no-rollback, defaults otherwise
#      (--poll 5s, --max-task-failures 3). --no-rollback so that it stops at the verdict, as
#      the waiter does: what is measured is the time to *report* the failure, not to repair
#      it (a rollback adds the time the old task definition takes to be stable again).
#   2. the service is put back on the good task definition (and waited for);
#   3. aws ecs update-service to the same crashing task definition, then
#      aws ecs wait services-stable. The waiter polls every 15 s, 40 times (10 min), and has
#      no notion of a failing deployment: it only ever gives up. It is capped at
#      BENCH_AWS_CAP seconds (default 600, the waiter's own limit); when the cap is hit the
#      figure is reported as ">= cap" and the ratio as a lower bound.
#
# Goals (issue 7): ecs-roll reports >= 20x sooner, with <= 2 of its polls after the first
# stopped task (ecs-roll's own count, deployments[].failure.polls_after_first_stopped_task;
# cross-checked with the time from the first task's stoppedAt, read from the emulator, to
# ecs-roll's exit).
#
# Measured on this 2-core machine (debug build): ecs-roll 5.2 s (2 polls, 0 after the first
# stopped task; it decides on the poll that sees 3+ stopped tasks), the waiter 586.6 s (40 x
# 15 s, then "Max attempts exceeded"): 113x.
#
# A full run takes the waiter's 10 minutes; BENCH_AWS_CAP=60 gives a quick (lower-bound) run.
# Needs: the Docker Engine (scripts/services up), busybox-static, jq, the AWS CLI,
# ecs-roll and ecs-emulator built (BIN, default target/release, else target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."

CAP=${BENCH_AWS_CAP:-600}
BIN=${BIN:-target/release}
if [[ ! -x $BIN/ecs-roll || ! -x $BIN/ecs-emulator ]] && [[ -x target/debug/ecs-roll && -x target/debug/ecs-emulator ]]; then
	echo "bench-ecs-roll: $BIN has no ecs-roll/ecs-emulator; using target/debug" >&2
	BIN=target/debug
fi
ECS_ROLL="$BIN/ecs-roll"
EMULATOR="$BIN/ecs-emulator"
for bin in "$ECS_ROLL" "$EMULATOR"; do
	[[ -x $bin ]] || { echo "build first: cargo build --release -p ecs-roll -p ecs-emulator" >&2; exit 2; }
done
[[ -f target/services.env ]] || { echo "the local services are not up: scripts/services up" >&2; exit 2; }
set -a
# shellcheck disable=SC1091
source target/services.env
set +a
docker version >/dev/null 2>&1 || { echo "the Docker Engine is not reachable: scripts/services up docker" >&2; exit 2; }
[[ -x /bin/busybox ]] || { echo "/bin/busybox is missing: apt-get install busybox-static" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is missing: apt-get install jq" >&2; exit 2; }

# The AWS CLI: as scripts/services exposes it, else on PATH, else in the services' venv.
AWS=${AWS_CLI:-}
[[ -n $AWS ]] || AWS=$(command -v aws || true)
if [[ -z $AWS && -n ${SHIPKIT_SERVICES_DIR:-} ]]; then
	venv="$SHIPKIT_SERVICES_DIR/venv"
	if [[ ! -x $venv/bin/aws && -x $venv/bin/pip ]]; then
		echo "bench-ecs-roll: installing awscli into $venv" >&2
		"$venv/bin/pip" install -q awscli >&2
	fi
	[[ -x $venv/bin/aws ]] && AWS=$venv/bin/aws
fi
[[ -n $AWS ]] || { echo "the AWS CLI is missing: pip install awscli" >&2; exit 2; }

WORK=$(mktemp -d)
PREFIX="shipkit-bench-ecs-roll-$$"
EMU_PID=
cleanup() {
	if [[ -n $EMU_PID ]] && kill -0 "$EMU_PID" 2>/dev/null; then
		# SIGTERM: the emulator removes the containers it started.
		kill -TERM "$EMU_PID" 2>/dev/null || true
		wait "$EMU_PID" 2>/dev/null || true
	fi
	docker rmi -f "$PREFIX/web:good" "$PREFIX/web:crash" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf 'bench-ecs-roll: %s\n' "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.1f", e - s }'; }

# ------------------------------------------------------------------ images --

export DOCKER_BUILDKIT=0
mkdir -p "$WORK/good/www" "$WORK/crash"
cp /bin/busybox "$WORK/good/busybox"
cp /bin/busybox "$WORK/crash/busybox"
echo ok >"$WORK/good/www/health"
cat >"$WORK/good/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /busybox
COPY www /www
ENTRYPOINT ["/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
EOF
cat >"$WORK/crash/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /busybox
ENTRYPOINT ["/busybox", "sh", "-c", "echo 'crashing on purpose' >&2; /busybox sleep 0.5; exit 3"]
EOF
docker build -q -t "$PREFIX/web:good" "$WORK/good" >/dev/null 2>&1
docker build -q -t "$PREFIX/web:crash" "$WORK/crash" >/dev/null 2>&1

# ---------------------------------------------------------------- emulator --

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$EMULATOR" --listen "127.0.0.1:$PORT" --lb-ports 19960-19979 >"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
for _ in $(seq 1 100); do
	grep -q "listening on http://127.0.0.1:$PORT" "$WORK/emulator.log" && break
	kill -0 "$EMU_PID" 2>/dev/null || { cat "$WORK/emulator.log" >&2; exit 1; }
	sleep 0.1
done
grep -q "listening on" "$WORK/emulator.log" || { echo "the emulator did not start" >&2; cat "$WORK/emulator.log" >&2; exit 1; }
export AWS_ENDPOINT_URL_ECS="http://127.0.0.1:$PORT"
ecs() { "$AWS" --endpoint-url "$AWS_ENDPOINT_URL_ECS" --region us-east-1 ecs "$@"; }
say "emulator on $AWS_ENDPOINT_URL_ECS (pid $EMU_PID); AWS CLI: $("$AWS" --version 2>&1 | cut -d' ' -f1)"

CLUSTER=bench
SERVICE=web
ecs create-cluster --cluster-name "$CLUSTER" >/dev/null
task_definition() { # task_definition IMAGE → JSON for register-task-definition
	jq -n --arg image "$1" '{
	  family: "bench-web", networkMode: "bridge", requiresCompatibilities: ["EC2"],
	  containerDefinitions: [{name: "web", image: $image, essential: true, memory: 64,
	    portMappings: [{containerPort: 8080, hostPort: 0, protocol: "tcp"}]}]}'
}
GOOD_TD=$(ecs register-task-definition --cli-input-json "$(task_definition "$PREFIX/web:good")" \
	--query taskDefinition.taskDefinitionArn --output text)
ecs create-service --cluster "$CLUSTER" --service-name "$SERVICE" --task-definition "$GOOD_TD" \
	--desired-count 2 --launch-type EC2 \
	--load-balancers "targetGroupArn=arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/bench-web/0123456789abcdef,containerName=web,containerPort=8080" \
	--deployment-configuration 'minimumHealthyPercent=100,maximumPercent=200,deploymentCircuitBreaker={enable=false,rollback=false}' \
	>/dev/null
wait_stable() { ecs wait services-stable --cluster "$CLUSTER" --services "$SERVICE"; }
wait_stable
say "service $CLUSTER/$SERVICE stable on $(basename "$GOOD_TD") (2 tasks)"

# ---------------------------------------------------------------- 1. ecs-roll --

say "1/2 ecs-roll --no-rollback to the crashing image (poll 5s, max task failures 3)"
rc=0
t0=$(now)
"$ECS_ROLL" -v --cluster "$CLUSTER" --service "$SERVICE" --container "web=$PREFIX/web:crash" --no-rollback \
	</dev/null >"$WORK/ecs-roll.json" 2>"$WORK/ecs-roll.err" || rc=$?
t1=$(now)
ECS_ROLL_SECS=$(secs "$t0" "$t1")
if ((rc != 1)); then
	say "ecs-roll exited $rc (expected 1, a failed deployment):"
	cat "$WORK/ecs-roll.err" >&2
	exit 1
fi
deployment=$(jq -c '.deployments[0]' "$WORK/ecs-roll.json")
CRASH_TD=$(jq -r '.task_definition' <<<"$deployment")
DEPLOYMENT_ID=$(jq -r '.deployment_id' <<<"$deployment")
POLLS=$(jq -r '.failure.polls // "?"' <<<"$deployment")
POLLS_AFTER=$(jq -r '.failure.polls_after_first_stopped_task // "?"' <<<"$deployment")
REASON=$(jq -r '.failure.reason // .failure // "?" | if length > 150 then .[0:150] + "…" else . end' <<<"$deployment")
say "ecs-roll: exit $rc after ${ECS_ROLL_SECS}s: $REASON"

# When the first task of that deployment stopped, by the emulator's clock (epoch seconds).
stopped_arns=$(ecs list-tasks --cluster "$CLUSTER" --started-by "$DEPLOYMENT_ID" --desired-status STOPPED \
	--query taskArns --output text)
FIRST_STOP=
if [[ -n $stopped_arns && $stopped_arns != None ]]; then
	# shellcheck disable=SC2086 # one argument per task ARN
	FIRST_STOP=$(ecs describe-tasks --cluster "$CLUSTER" --tasks $stopped_arns --output json |
		jq -r '[.tasks[].stoppedAt | select(. != null)
		        | if type == "number" then . else (sub("\\.[0-9]+"; "") | sub("(?<z>[+-][0-9]{2}):?(?<m>[0-9]{2})$"; "Z") | fromdateiso8601) end]
		       | min // empty')
fi
SINCE_STOP="?"
[[ -n $FIRST_STOP ]] && SINCE_STOP=$(secs "$FIRST_STOP" "$t1")

# ------------------------------------------------ back to the good definition --

ecs update-service --cluster "$CLUSTER" --service "$SERVICE" --task-definition "$GOOD_TD" >/dev/null
wait_stable
say "service back on $(basename "$GOOD_TD") and stable"

# ------------------------------------------------------------------ 2. aws --

say "2/2 aws ecs update-service + aws ecs wait services-stable (capped at ${CAP}s)"
rc=0
t0=$(now)
ecs update-service --cluster "$CLUSTER" --service "$SERVICE" --task-definition "$CRASH_TD" >/dev/null
timeout "$CAP" "$AWS" --endpoint-url "$AWS_ENDPOINT_URL_ECS" --region us-east-1 \
	ecs wait services-stable --cluster "$CLUSTER" --services "$SERVICE" 2>"$WORK/aws.err" || rc=$?
t1=$(now)
AWS_SECS=$(secs "$t0" "$t1")
case $rc in
0) AWS_NOTE="returned 0: it called the crashing deployment stable" ;;
124) AWS_NOTE="still waiting at the cap"; AWS_SECS=">= $CAP" ;;
*) AWS_NOTE="gave up (exit $rc: $(tr -s '\n ' '  ' <"$WORK/aws.err" | sed 's/^ *//; s/ *$//' | cut -c1-80)) without naming the failure" ;;
esac
say "aws: $AWS_NOTE"

# ------------------------------------------------------------------ report --

aws_num=${AWS_SECS#>= }
ratio=$(awk -v a="$aws_num" -v e="$ECS_ROLL_SECS" 'BEGIN { printf "%.0f", a / e }')
goal_ratio=$(awk -v a="$aws_num" -v e="$ECS_ROLL_SECS" 'BEGIN { print (a / e >= 20) ? "met" : "NOT met" }')
if [[ $AWS_SECS == ">="* ]]; then
	ratio=">= $ratio"
	# A lower bound below the goal says nothing: the cap was too low.
	[[ $goal_ratio == met ]] || goal_ratio="not shown, BENCH_AWS_CAP=$CAP is too low"
fi
goal_polls="NOT met"
[[ $POLLS_AFTER =~ ^[0-9]+$ ]] && ((POLLS_AFTER <= 2)) && goal_polls=met

printf '\nTime to report a failing ECS deployment (crashing image, 2 tasks behind a load balancer,\nsame emulator, service and task definitions)\n\n'
printf '  %-34s %12s\n' "tool" "seconds"
printf '  %-34s %12s\n' "ecs-roll (poll 5s, 3 failures)" "$ECS_ROLL_SECS"
printf '  %-34s %12s\n' "aws ecs wait services-stable" "$AWS_SECS"
printf '\n  ratio (aws / ecs-roll):            %sx   (goal >= 20x: %s)\n' "$ratio" "$goal_ratio"
printf '  ecs-roll polls:                    %s in all, %s after the first stopped task   (goal <= 2: %s)\n' \
	"$POLLS" "$POLLS_AFTER" "$goal_polls"
printf '  ecs-roll exited %ss after the first task of the deployment stopped (emulator clock)\n' "$SINCE_STOP"
printf '  ecs-roll said: %s\n' "$REASON"
printf '  aws: %s\n\n' "$AWS_NOTE"
