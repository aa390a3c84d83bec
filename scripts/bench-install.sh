#!/usr/bin/env bash
# Benchmark: how long installing shipkit takes, the two ways that need no compiler, against a
# release served on loopback (so the figure is the install's own, not the network's):
#   tarball - the README's commands: curl the tarball and SHA256SUMS, sha256sum --check,
#             tar -x, copy bin/ (into a temporary directory, not /usr/local/bin);
#   action  - action.yml's shell steps as a runner runs them (bash -eo pipefail, each step's
#             env, GITHUB_OUTPUT), `version: latest`, all six tools: once from nothing, once
#             with the release already in the tool cache (what actions/cache restores).
# The tarball is made from the release binaries in $BIN (scripts/dist --bin-dir, gzip -9, as
# `make dist` makes it). Medians of $RUNS runs. `cargo install` is not timed here (minutes of
# compiling): the README gives its figures and commands.
#
# Usage: scripts/bench-install.sh            (after `cargo build --release --workspace --bins`)
# Env:   BIN (target/release), RUNS (5), PYTHON (target/services/venv/bin/python: needs PyYAML)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$root/target/release}
RUNS=${RUNS:-5}
PYTHON=${PYTHON:-$root/target/services/venv/bin/python}
[[ -x $PYTHON ]] || { echo "bench-install: $PYTHON is missing: run scripts/services up (its venv has PyYAML)" >&2; exit 2; }
out=$root/target/bench-install
rm -rf "$out"
tarball=$("$root/scripts/dist" --bin-dir "$BIN" --out-dir "$out/site")

exec "$PYTHON" - "$root" "$out/site" "$tarball" "$RUNS" <<'PYTHON'
import http.server, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time
import yaml

root, site, tarball, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
name = os.path.basename(tarball)
version, target = re.fullmatch(r"shipkit-(\d+\.\d+\.\d+)-(.+)\.tar\.gz", name).groups()


class Releases(http.server.BaseHTTPRequestHandler):
    """GitHub's release URLs: /releases/latest redirects to the tag, files under download/."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        download = f"/releases/download/v{version}/"
        if self.path == "/releases/latest":
            self.send_response(302)
            self.send_header("Location", f"/releases/tag/v{version}")
            self.end_headers()
            return
        if self.path == f"/releases/tag/v{version}":
            body = b"release"
        elif self.path.startswith(download) and "/" not in self.path[len(download):]:
            with open(os.path.join(site, self.path[len(download):]), "rb") as file:
                body = file.read()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Releases)
threading.Thread(target=server.serve_forever, daemon=True).start()
releases = f"http://127.0.0.1:{server.server_port}/releases"


def timed(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def tarball_install():
    """The README's commands, into a directory of their own."""
    work = tempfile.mkdtemp()
    script = f"""
        v={version} t={target}
        curl -fsSLO {releases}/download/v$v/shipkit-$v-$t.tar.gz
        curl -fsSL {releases}/download/v$v/SHA256SUMS | sha256sum --check --ignore-missing >/dev/null
        tar -xzf shipkit-$v-$t.tar.gz && mkdir -p bin && cp shipkit-$v-$t/bin/* bin/
    """
    try:
        subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=work, check=True)
    finally:
        shutil.rmtree(work)


with open(os.path.join(root, "action.yml")) as file:
    steps = [s for s in yaml.safe_load(file)["runs"]["steps"] if "run" in s]
runner_os, runner_arch = {"x86_64-unknown-linux-gnu": ("Linux", "X64"),
                          "aarch64-unknown-linux-gnu": ("Linux", "ARM64")}[target]


def action_install(tool_cache):
    """action.yml's shell steps, `${{ … }}` in their env replaced as the runner would."""
    temp = tempfile.mkdtemp()
    values = {"inputs.version": "latest", "inputs.tools": "", "inputs.releases-url": releases,
              "github.action_repository": ""}
    try:
        for step in steps:
            output = os.path.join(temp, "output")
            open(output, "w").close()
            env = dict(os.environ, RUNNER_OS=runner_os, RUNNER_ARCH=runner_arch,
                       RUNNER_TEMP=temp, RUNNER_TOOL_CACHE=tool_cache, GITHUB_OUTPUT=output,
                       GITHUB_PATH=os.path.join(temp, "path"))
            for key, value in step.get("env", {}).items():
                env[key] = re.sub(r"\$\{\{ *([^ }]+) *\}\}", lambda m: values[m.group(1)], value)
            subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            with open(output) as file:
                for line in file:
                    key, _, value = line.rstrip("\n").partition("=")
                    values[f"steps.{step.get('id', '')}.outputs.{key}"] = value
    finally:
        shutil.rmtree(temp)


tarball_times, fresh_times, cached_times = [], [], []
for _ in range(runs):
    tarball_times.append(timed(tarball_install))
    cache = tempfile.mkdtemp()
    fresh_times.append(timed(lambda: action_install(cache)))
    cached_times.append(timed(lambda: action_install(cache)))
    shutil.rmtree(cache)


def show(label, times):
    print(f"{label:34} median {statistics.median(times):5.2f} s   (min {min(times):.2f}, max {max(times):.2f})")


size = os.path.getsize(tarball) / 1e6
print(f"\n{name}: {size:.1f} MB, served on loopback; {runs} runs each")
show("tarball (README's commands)", tarball_times)
show("action, from nothing", fresh_times)
show("action, release in the tool cache", cached_times)
PYTHON
