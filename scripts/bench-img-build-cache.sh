#!/usr/bin/env bash
# img-build on BuildKit, side by side in one run (issue 14). The machine is shared and noisy:
# the ratios mean more than the seconds.
#
# A context whose Dockerfile installs something slow (a RUN of SLOW seconds) and copies a
# changed source file last, as a service's Dockerfile does:
#  1. a fresh-runner rebuild (no local image, BuildKit's cache pruned, app.txt changed) with
#     --cache-from the image main pushed to the registry (its inline cache) vs the same
#     rebuild without --cache-from: goal <= 0.30x;
#  2. a first build with BuildKit vs the classic builder (both --no-cache): goal <= 1.00x.
#
# Each measurement is the median of RUNS runs. Needs dockerd and the local registry
# (scripts/services up docker registry; target/services.env sourced, as `make bench` does),
# the docker client and busybox-static. Note: `docker builder prune -af` empties the whole
# Engine's BuildKit cache, as a fresh runner has it; do not run it beside other builds.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
IMG_BUILD="$BIN/img-build"
IMG_PUSH="$BIN/img-push"
SLOW=${SLOW:-4}
RUNS=${RUNS:-3}
REGISTRY=${SHIPKIT_REGISTRY:-}

[[ -x $IMG_BUILD && -x $IMG_PUSH ]] || { echo "build first: cargo build --release -p img-build -p img-push" >&2; exit 2; }
[[ -n $REGISTRY && -r ${SHIPKIT_REGISTRY_PASSWORD_FILE:-} ]] || {
  echo "the local registry's settings are missing: source target/services.env (scripts/services up registry)" >&2; exit 2; }
docker version >/dev/null 2>&1 || { echo "the Docker Engine is not reachable: scripts/services up docker" >&2; exit 2; }

WORK=$(mktemp -d)
NAME="imgb-bench-cache-$$"
export DOCKER_CONFIG="$WORK/docker-config"
cleanup() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "(^|/)$NAME" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$DOCKER_CONFIG"
docker --config "$DOCKER_CONFIG" login --username "$SHIPKIT_REGISTRY_USER" --password-stdin "$REGISTRY" \
  <"$SHIPKIT_REGISTRY_PASSWORD_FILE" >/dev/null

CTX="$WORK/ctx"
mkdir -p "$CTX"
cp /bin/busybox "$CTX/busybox"
echo "$NAME" >"$CTX/id.txt"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM scratch
COPY busybox /bin/busybox
SHELL ["/bin/busybox", "sh", "-c"]
COPY id.txt /id.txt
RUN echo installing dependencies; /bin/busybox sleep $SLOW; echo deps > /deps
COPY app.txt /app.txt
DOCKERFILE
MAIN="$REGISTRY/$NAME:main"

# seconds COMMAND...: the wall time of one run, in seconds.
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$WORK/stderr.txt" || { echo "failed: $*" >&2; cat "$WORK/stderr.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  awk "BEGIN { printf \"%.3f\n\", $end - $start }"
}
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
fresh_runner() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "(^|/)$NAME" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  docker builder prune -af >/dev/null 2>&1 || { echo "docker builder prune failed" >&2; exit 1; }
}

echo "seeding $MAIN (build with the inline cache, push)" >&2
echo "main" >"$CTX/app.txt"
"$IMG_BUILD" -q --context "$CTX" --name "$NAME" --tag main --cache-to inline >"$WORK/main.json"
"$IMG_PUSH" -q --registry "$REGISTRY" <"$WORK/main.json" >/dev/null

for i in $(seq 1 "$RUNS"); do
  echo "run $i/$RUNS" >&2
  echo "change $i" >"$CTX/app.txt"
  fresh_runner
  seconds "$IMG_BUILD" -q --context "$CTX" --name "$NAME" --tag "with$i" --cache-from "$MAIN" >>"$WORK/with"
  fresh_runner
  seconds "$IMG_BUILD" -q --context "$CTX" --name "$NAME" --tag "without$i" >>"$WORK/without"
  seconds "$IMG_BUILD" -q --no-cache --builder buildkit --context "$CTX" --name "$NAME" --tag "bk$i" >>"$WORK/buildkit"
  seconds "$IMG_BUILD" -q --no-cache --builder classic --context "$CTX" --name "$NAME" --tag "classic$i" >>"$WORK/classic"
done

with=$(median "$WORK/with"); without=$(median "$WORK/without")
bk=$(median "$WORK/buildkit"); classic=$(median "$WORK/classic")
ratio() { awk "BEGIN { printf \"%.2fx\", $2 / $1 }"; }
printf '\n%-48s %10s %10s %8s %8s\n' "img-build on BuildKit ($RUNS runs, median, RUN of ${SLOW}s)" "baseline" "img-build" "ratio" "goal"
printf '%-48s %9.2fs %9.2fs %8s %8s\n' "fresh runner: --cache-from main vs without" "$without" "$with" "$(ratio "$without" "$with")" "<=0.30x"
printf '%-48s %9.2fs %9.2fs %8s %8s\n' "first build: BuildKit vs classic builder" "$classic" "$bk" "$(ratio "$classic" "$bk")" "<=1.00x"
