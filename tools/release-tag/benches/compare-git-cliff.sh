#!/usr/bin/env bash
# Benchmark: how long release-tag takes to compute the next version on a large repository,
# side by side with the floor, `git log --format=%B v1.0.0..HEAD` (what anything reading the
# messages through git must pay at least), and `git-cliff --bumped-version`.
# Goals (issue #16), on the far scenario (every commit read): release-tag <= 1.7x the floor
# and <= 0.15x git-cliff, its peak RSS (git's included) within 10 MB of the floor's.
#
# Generates (once, with `git fast-import`) a repository of $COMMITS conventional commits
# and times, $RUNS times each, every command in two scenarios:
#   far  - the last release tag is at the very first commits: every commit is read;
#   near - the last release tag is $NEAR commits below HEAD (the usual case).
# release-tag runs with --dry-run (it computes everything and creates nothing).
#
# git-cliff is installed with `cargo install --locked` into target/bench-tools (only here,
# never for the build or the tests); when it cannot be installed, only release-tag and the
# floor are timed.
#
# Usage: tools/release-tag/benches/compare-git-cliff.sh
# Env:   COMMITS (50000), NEAR (100), RUNS (5), BENCH_DIR (target/bench-release-tag),
#        GIT_CLIFF_INSTALL (1; 0: do not install git-cliff when it is missing)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
COMMITS="${COMMITS:-50000}"
NEAR="${NEAR:-100}"
RUNS="${RUNS:-5}"
BENCH_DIR="${BENCH_DIR:-$ROOT/target/bench-release-tag}"
TOOLS_DIR="$ROOT/target/bench-tools"
mkdir -p "$BENCH_DIR" "$TOOLS_DIR"

# Git must not read the machine's configuration (signing, hooks, templates).
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.com

echo "== building release-tag (release profile)"
cargo build --release -p release-tag --manifest-path "$ROOT/Cargo.toml" >&2
RELEASE_TAG="$ROOT/target/release/release-tag"

GIT_CLIFF="$(command -v git-cliff || true)"
if [[ -z "$GIT_CLIFF" && -x "$TOOLS_DIR/bin/git-cliff" ]]; then
    GIT_CLIFF="$TOOLS_DIR/bin/git-cliff"
fi
if [[ -z "$GIT_CLIFF" && ${GIT_CLIFF_INSTALL:-1} == 0 ]]; then
    echo "git-cliff is not installed and GIT_CLIFF_INSTALL=0: timing release-tag and the floor"
elif [[ -z "$GIT_CLIFF" ]]; then
    echo "== installing git-cliff into $TOOLS_DIR (benchmark only)"
    if cargo install git-cliff --locked --no-default-features --root "$TOOLS_DIR" >&2 \
        || cargo install git-cliff --locked --root "$TOOLS_DIR" >&2; then
        GIT_CLIFF="$TOOLS_DIR/bin/git-cliff"
    else
        echo "git-cliff could not be installed: timing release-tag alone"
    fi
fi

# The history: conventional commits of every kind, one file changed per commit.
generate() {
    local repo="$1" tag_at="$2"
    rm -rf "$repo"
    git init -q -b main "$repo"
    awk -v n="$COMMITS" -v tag_at="$tag_at" 'BEGIN {
        split("feat(api)|fix|chore(deps)|docs|fix(ui)|perf(db)|refactor|test|Update things|ci", kinds, "|")
        for (i = 1; i <= n; i++) {
            k = kinds[(i % 10) + 1]
            if (k == "Update things") msg = sprintf("Update things %d", i)
            else msg = sprintf("%s: change number %d", k, i)
            if (i % 997 == 0) msg = msg "\n\nBREAKING CHANGE: renamed option " i
            printf "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", i, 1700000000 + i * 60
            printf "data %d\n%s\n", length(msg) + 1, msg
            if (i > 1) printf "from :%d\n", i - 1
            content = sprintf("line %d\n", i)
            printf "M 644 inline src/f%d.txt\ndata %d\n%s\n", i % 100, length(content), content
            if (i == tag_at) {
                tagmsg = "v1.0.0"
                printf "tag v1.0.0\nfrom :%d\ntagger Bench <bench@example.com> %d +0000\ndata %d\n%s\n", i, 1700000000 + i * 60, length(tagmsg), tagmsg
            }
        }
    }' | git -C "$repo" fast-import --quiet
    git -C "$repo" reset -q --hard main
}

# Median wall time, in milliseconds, of $RUNS runs of "$@" (after one warm-up run).
time_ms() {
    local times=() start end
    "$@" >/dev/null 2>&1 || true
    for ((r = 0; r < RUNS; r++)); do
        start=$(date +%s%N)
        "$@" >/dev/null 2>&1 || true
        end=$(date +%s%N)
        times+=($(((end - start) / 1000000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

# Peak RSS in MB of one run of "$@", the processes it waits for (git) included.
peak_mb() {
    /usr/bin/time -f '%M' -o "$BENCH_DIR/time.out" "$@" >/dev/null 2>&1 || true
    awk '{ printf "%.0f", $1 / 1024 }' "$BENCH_DIR/time.out"
}

CLIFF_CONFIG="$BENCH_DIR/cliff.toml"
if [[ -n "$GIT_CLIFF" && ! -f "$CLIFF_CONFIG" ]]; then
    (cd "$BENCH_DIR" && "$GIT_CLIFF" --init >/dev/null 2>&1) || true
fi
[[ -x /usr/bin/time ]] || { echo "GNU time (/usr/bin/time, Debian package time) is needed for peak RSS" >&2; exit 2; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# met OURS THEIRS GOAL: whether OURS/THEIRS <= GOAL, on the unrounded times (a ratio printed as
# 1.70 may be 1.703, over a 1.7 goal).
met() { awk -v a="$1" -v b="$2" -v goal="$3" 'BEGIN { print (b != "-" && b > 0 && a / b <= goal) ? "met" : "NOT met" }'; }

printf '\n%-6s %8s  %16s  %16s  %16s  %s\n' scenario commits "release-tag" "floor (git log)" git-cliff versions
results=()
for scenario in far near; do
    case "$scenario" in
        far) tag_at=10 ;;
        near) tag_at=$((COMMITS - NEAR)) ;;
    esac
    repo="$BENCH_DIR/repo-$scenario-$COMMITS"
    if [[ ! -d "$repo/.git" ]]; then
        echo "== generating $repo ($COMMITS commits, v1.0.0 at commit $tag_at)" >&2
        generate "$repo" "$tag_at"
    fi
    ours_version=$("$RELEASE_TAG" --dry-run --repo "$repo" -q </dev/null | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
    ours=$(time_ms "$RELEASE_TAG" --dry-run --repo "$repo" -q)
    ours_mb=$(peak_mb "$RELEASE_TAG" --dry-run --repo "$repo" -q)
    floor_cmd=(git -C "$repo" log --format=%B v1.0.0..HEAD)
    floor=$(time_ms "${floor_cmd[@]}")
    floor_mb=$(peak_mb "${floor_cmd[@]}")
    theirs="-" theirs_mb="-" theirs_version="-"
    if [[ -n "$GIT_CLIFF" ]]; then
        cliff_args=(--repository "$repo" --bumped-version)
        [[ -f "$CLIFF_CONFIG" ]] && cliff_args=(--config "$CLIFF_CONFIG" "${cliff_args[@]}")
        theirs_version=$("$GIT_CLIFF" "${cliff_args[@]}" 2>/dev/null || echo "?")
        theirs=$(time_ms "$GIT_CLIFF" "${cliff_args[@]}")
        theirs_mb=$(peak_mb "$GIT_CLIFF" "${cliff_args[@]}")
    fi
    printf '%-6s %8d  %6s ms %4s MB  %6s ms %4s MB  %6s ms %4s MB  release-tag %s, git-cliff %s\n' \
        "$scenario" "$COMMITS" "$ours" "$ours_mb" "$floor" "$floor_mb" "$theirs" "$theirs_mb" \
        "$ours_version" "$theirs_version"
    to_floor=$(ratio "$ours" "$floor")
    to_cliff=$(ratio "$ours" "$theirs")
    rss_over=$((ours_mb - floor_mb))
    if [[ $scenario == far ]]; then
        results+=("$(printf '%-6s release-tag / floor %5s (goal <= 1.7: %s)   / git-cliff %5s (goal <= 0.15: %s)   peak RSS %+d MB over the floor (goal <= 10: %s)' \
            "$scenario" "$to_floor" "$(met "$ours" "$floor" 1.7)" "$to_cliff" "$(met "$ours" "$theirs" 0.15)" \
            "$rss_over" "$( ((rss_over <= 10)) && echo met || echo "NOT met")")")
    else
        # A few milliseconds either way: the ratio to one git call is the cost of starting
        # git several times (HEAD, branch, status, tags, log), not of reading history.
        results+=("$(printf '%-6s release-tag / floor %5s   / git-cliff %5s   peak RSS %+d MB over the floor   (no goal: %s ms against one git call)' \
            "$scenario" "$to_floor" "$to_cliff" "$rss_over" "$ours")")
    fi
done
echo
printf '%s\n' "${results[@]}"
echo "median wall time of $RUNS runs each (release build; release-tag --dry-run); peak RSS of one run, git's included"
