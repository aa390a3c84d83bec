#!/usr/bin/env bash
# img-build benchmarks against `docker build` (classic builder), side by side in one run.
# The machine is shared and noisy: the ratios mean more than the seconds.
#
# A context of FILES files / about MB megabytes of random data (plus busybox) is generated
# in a temp dir; the Dockerfile is `FROM scratch` + `COPY . /app`.
#  1. first build, nothing cached (both with --no-cache): goal img-build <= 1.1x docker.
#     img-build labels its images (content digest, OCI title and created, in one LABEL
#     step); docker is also timed with 3 --labels, which its classic builder commits as
#     3 LABEL steps.
#  2. rebuild of an unchanged context, warm cache (docker: layer cache; img-build: content
#     digest): goal img-build <= 0.25x docker.
#  3. peak memory (max RSS, /usr/bin/time -v) of each client during the first build: the
#     context is streamed, so img-build's must not grow with the context.
#
# Each measurement is the median of RUNS runs. Needs dockerd (scripts/services up docker),
# the docker client, /usr/bin/time, python3 and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
IMG_BUILD="$BIN/img-build"
FILES=${FILES:-10000}
MB=${MB:-210}
RUNS=${RUNS:-3}

[[ -x $IMG_BUILD ]] || { echo "build first: cargo build --release -p img-build" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time is needed (Debian package time)" >&2; exit 2; }
docker version >/dev/null 2>&1 || { echo "the Docker Engine is not reachable: scripts/services up docker" >&2; exit 2; }

WORK=$(mktemp -d)
TAG_PREFIX="imgb-bench-$$"
cleanup() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$TAG_PREFIX" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

CTX="$WORK/ctx"
mkdir -p "$CTX"
echo "generating $FILES files, ~$MB MB in $CTX" >&2
python3 - "$CTX" "$FILES" "$MB" <<'EOF'
import os, sys
root, files, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = mb * 1024 * 1024 // files
for i in range(files):
    d = os.path.join(root, "d%03d" % (i % 100), "e%02d" % (i // 100 % 10))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(size))
EOF
cp /bin/busybox "$CTX/busybox"
printf 'FROM scratch\nCOPY . /app\n' >"$CTX/Dockerfile"
echo "context: $(find "$CTX" -type f | wc -l) files, $(du -sm "$CTX" | cut -f1) MB" >&2

# run LABEL COMMAND...: appends "seconds max_rss_kb" of one run to $WORK/LABEL.
run() {
  local label=$1; shift
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
    echo "$label failed:" >&2; cat "$WORK/stderr.txt" >&2; exit 1; }
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = (n == 3) ? t[1]*3600 + t[2]*60 + t[3] : t[1]*60 + t[2] }
    /Maximum resident set size/ { rss = $2 }
    END { printf "%.3f %d\n", s, rss }' "$WORK/time.txt" >>"$WORK/$label"
}

median() { # FILE COLUMN
  sort -n -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'
}

export DOCKER_BUILDKIT=0
for i in $(seq 1 "$RUNS"); do
  echo "run $i/$RUNS" >&2
  # First builds: nothing reused, by either tool.
  run docker_first docker build --no-cache -q -t "$TAG_PREFIX-docker:first$i" "$CTX"
  run docker_first_labels docker build --no-cache -q --label a=1 --label b=2 --label c=3 \
    -t "$TAG_PREFIX-docker:labels$i" "$CTX"
  run img_first "$IMG_BUILD" -q --no-cache --context "$CTX" --name "$TAG_PREFIX-img" --tag "first$i"
  # Unchanged context, warm cache.
  run docker_warm docker build -q -t "$TAG_PREFIX-docker:warm$i" "$CTX"
  run img_warm "$IMG_BUILD" -q --context "$CTX" --name "$TAG_PREFIX-img" --tag "warm$i"
done

df=$(median "$WORK/docker_first" 1); if_=$(median "$WORK/img_first" 1)
dl=$(median "$WORK/docker_first_labels" 1)
dw=$(median "$WORK/docker_warm" 1); iw=$(median "$WORK/img_warm" 1)
dm=$(median "$WORK/docker_first" 2); im=$(median "$WORK/img_first" 2)
ratio() { awk "BEGIN { printf \"%.2fx\", $2 / $1 }"; }

printf '\n%-34s %12s %12s %8s %8s\n' "img-build vs docker build ($RUNS runs, median)" "docker" "img-build" "ratio" "goal"
printf '%-34s %11.2fs %11.2fs %8s %8s\n' "first build (no cache)" "$df" "$if_" "$(ratio "$df" "$if_")" "<=1.10x"
printf '%-34s %11.2fs %11.2fs %8s\n' "first build, docker with 3 --label" "$dl" "$if_" "$(ratio "$dl" "$if_")"
printf '%-34s %11.2fs %11.2fs %8s %8s\n' "unchanged rebuild (warm cache)" "$dw" "$iw" "$(ratio "$dw" "$iw")" "<=0.25x"
printf '%-34s %10dMB %10dMB %8s\n' "client peak RSS, first build" "$((dm / 1024))" "$((im / 1024))" "$(ratio "$dm" "$im")"
