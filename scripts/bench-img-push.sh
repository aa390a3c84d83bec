#!/usr/bin/env bash
# img-push benchmarks against `docker push`, side by side in one run, on the local registry
# (localhost:5000, scripts/services up). The machine is shared and noisy: the ratios mean
# more than the seconds.
#
# Images: a shared base layer of BASE_MB random megabytes, and on top of it one layer of
# LAYER_MB random megabytes unique to each image (`FROM scratch` + busybox).
#  1. re-push of an image the registry already has: `docker push` (checks every layer,
#     re-puts the manifest) vs img-push (one manifest HEAD, skipped): goal <= 0.2x.
#  2. 4 new images sharing the base layer: 4 sequential `docker push` vs one img-push call
#     (--jobs 4): goal <= 0.6x. Each run builds 4 fresh images for each tool, so both upload
#     4 unique layers; the base is in the registry from a warm-up push, for both alike.
#
# On loopback both goals are out of reach, and the script says so rather than hiding it:
# a re-push costs img-push ~20 ms, of which the Engine's /version (API negotiation, ~5 ms)
# and one bcrypt-checked HEAD on the htpasswd registry (~5 ms) are the floor, against ~45 ms
# for `docker push`; and 4 concurrent pushes are bound by the Engine compressing layers on
# 2 cores. Against a remote registry round trips dominate, where both ratios should be
# lower (not measured here: no network).
#
# Each measurement is the median of RUNS runs. Credentials come from a temporary Docker
# config (both clients read it). Needs dockerd, the registry, the docker client, busybox.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
IMG_PUSH="$BIN/img-push"
BASE_MB=${BASE_MB:-64}
LAYER_MB=${LAYER_MB:-16}
RUNS=${RUNS:-3}

[[ -x $IMG_PUSH ]] || { echo "build first: cargo build --release -p img-push (or BIN=target/debug)" >&2; exit 2; }
[[ -f target/services.env ]] || { echo "the local services are not up: scripts/services up" >&2; exit 2; }
# shellcheck disable=SC1091
source target/services.env
docker version >/dev/null 2>&1 || { echo "the Docker Engine is not reachable: scripts/services up docker" >&2; exit 2; }
curl -sS -o /dev/null "http://$SHIPKIT_REGISTRY/v2/" \
  || { echo "the registry $SHIPKIT_REGISTRY is not reachable: scripts/services up registry" >&2; exit 2; }

WORK=$(mktemp -d)
PREFIX="imgp-bench-$$"
REGISTRY="$SHIPKIT_REGISTRY/$PREFIX"
cleanup() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "(^|/)$PREFIX" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Both clients log in from this config; it holds the password, so it lives in WORK (0700).
export DOCKER_CONFIG="$WORK/docker"
mkdir -p "$DOCKER_CONFIG"
chmod 700 "$WORK"
auth=$(printf 'shipkit:%s' "$(cat "$SHIPKIT_REGISTRY_PASSWORD_FILE")" | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"}}}' "$SHIPKIT_REGISTRY" "$auth" >"$DOCKER_CONFIG/config.json"

export DOCKER_BUILDKIT=0
# The shared base: busybox + BASE_MB of random data.
mkdir -p "$WORK/base"
cp /bin/busybox "$WORK/base/busybox"
head -c "$((BASE_MB * 1024 * 1024))" /dev/urandom >"$WORK/base/base.bin"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY base.bin /base.bin\n' >"$WORK/base/Dockerfile"
docker build -q -t "$PREFIX-base:1" "$WORK/base" >/dev/null

# image NAME: builds NAME:v1 from the base with its own LAYER_MB layer.
image() {
  local dir="$WORK/ctx-$1"
  mkdir -p "$dir"
  head -c "$((LAYER_MB * 1024 * 1024))" /dev/urandom >"$dir/own.bin"
  printf 'FROM %s\nCOPY own.bin /own.bin\n' "$PREFIX-base:1" >"$dir/Dockerfile"
  docker build -q -t "$1:v1" "$dir" >/dev/null
  rm -rf "$dir"
}

# timed LABEL COMMAND...: appends the wall-clock seconds of one run to $WORK/LABEL.
timed() {
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$WORK/stderr.txt" || { echo "$label failed:" >&2; cat "$WORK/stderr.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }' >>"$WORK/$label"
}

docker_push_all() { for ref in "$@"; do docker push -q "$ref"; done; }

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Warm-up: the base layer goes into the registry once, so that both tools find it there.
docker tag "$PREFIX-base:1" "$REGISTRY/base:1"
docker push -q "$REGISTRY/base:1" >/dev/null

# 1. The image to re-push, present in the registry.
image "$PREFIX-present"
docker tag "$PREFIX-present:v1" "$REGISTRY/present:v1"
docker push -q "$REGISTRY/present:v1" >/dev/null

for i in $(seq 1 "$RUNS"); do
  echo "run $i/$RUNS" >&2
  timed docker_repush docker push -q "$REGISTRY/present:v1"
  timed img_repush "$IMG_PUSH" -q --registry "$REGISTRY" --image "$PREFIX-present:v1"

  # 2. Four fresh images per tool.
  refs=()
  for n in 1 2 3 4; do
    image "$PREFIX-d$i-$n"
    docker tag "$PREFIX-d$i-$n:v1" "$REGISTRY/$PREFIX-d$i-$n:v1"
    refs+=("$REGISTRY/$PREFIX-d$i-$n:v1")
  done
  timed docker_four docker_push_all "${refs[@]}"
  args=()
  for n in 1 2 3 4; do
    image "$PREFIX-i$i-$n"
    args+=(--image "$PREFIX-i$i-$n:v1")
  done
  timed img_four "$IMG_PUSH" -q --registry "$REGISTRY" --jobs 4 "${args[@]}"
done

dr=$(median "$WORK/docker_repush"); ir=$(median "$WORK/img_repush")
d4=$(median "$WORK/docker_four"); i4=$(median "$WORK/img_four")
ratio() { awk "BEGIN { printf \"%.2fx\", $2 / $1 }"; }

printf '\n%-44s %10s %10s %8s %8s\n' "img-push vs docker push ($RUNS runs, median)" "docker" "img-push" "ratio" "goal"
printf '%-44s %9.2fs %9.2fs %8s %8s\n' "re-push of an image already present" "$dr" "$ir" "$(ratio "$dr" "$ir")" "<=0.20x"
printf '%-44s %9.2fs %9.2fs %8s %8s\n' "4 new images sharing a ${BASE_MB}MB base (+${LAYER_MB}MB each)" "$d4" "$i4" "$(ratio "$d4" "$i4")" "<=0.60x"
