#!/usr/bin/env bash
# Benchmark: how long release-tag takes to compute the next version on a large repository,
# side by side with `git-cliff --bumped-version` (the issue's goal: <= 0.5x git-cliff).
#
# Generates (once, with `git fast-import`) a repository of $COMMITS conventional commits
# and times, $RUNS times each, both tools in two scenarios:
#   far  - the last release tag is at the very first commits: every commit is read;
#   near - the last release tag is $NEAR commits below HEAD (the usual case).
# release-tag runs with --dry-run (it computes everything and creates nothing).
#
# git-cliff is installed with `cargo install --locked` into target/bench-tools (only here,
# never for the build or the tests); when it cannot be installed, only release-tag is timed.
#
# Usage: tools/release-tag/benches/compare-git-cliff.sh
# Env:   COMMITS (50000), NEAR (100), RUNS (5), BENCH_DIR (target/bench-release-tag)
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
if [[ -z "$GIT_CLIFF" ]]; then
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

CLIFF_CONFIG="$BENCH_DIR/cliff.toml"
if [[ -n "$GIT_CLIFF" && ! -f "$CLIFF_CONFIG" ]]; then
    (cd "$BENCH_DIR" && "$GIT_CLIFF" --init >/dev/null 2>&1) || true
fi

printf '\n%-6s %8s  %14s  %14s  %7s  %s\n' scenario commits release-tag git-cliff ratio versions
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
    if [[ -n "$GIT_CLIFF" ]]; then
        cliff_args=(--repository "$repo" --bumped-version)
        [[ -f "$CLIFF_CONFIG" ]] && cliff_args=(--config "$CLIFF_CONFIG" "${cliff_args[@]}")
        theirs_version=$("$GIT_CLIFF" "${cliff_args[@]}" 2>/dev/null || echo "?")
        theirs=$(time_ms "$GIT_CLIFF" "${cliff_args[@]}")
        ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')
        printf '%-6s %8d  %11d ms  %11d ms  %7s  release-tag %s, git-cliff %s\n' \
            "$scenario" "$COMMITS" "$ours" "$theirs" "$ratio" "$ours_version" "$theirs_version"
    else
        printf '%-6s %8d  %11d ms  %14s  %7s  release-tag %s\n' \
            "$scenario" "$COMMITS" "$ours" "-" "-" "$ours_version"
    fi
done
echo
echo "ratio = release-tag / git-cliff, median of $RUNS runs each (goal: <= 0.5)"
