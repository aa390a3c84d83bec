# shipkit: build, test, demo, local services, lint, bench.
# `make test` is what CI runs (.ci/run): it installs and starts the local services first.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
SERVICES_ENV := target/services.env
# Tests and the demo see the local stand-ins only through ordinary settings.
WITH_SERVICES := set -a && source $(SERVICES_ENV) && set +a &&

.PHONY: build dist test unit lint fmt clippy bench fuzz demo demo-dev demo-clean services-up services-down services-status clean

build:
	$(CARGO) build --workspace --bins

# Release binaries for this machine's target, packaged with man pages, completions, README and
# licences: target/dist/shipkit-<version>-<target>.tar.gz and target/dist/SHA256SUMS (the
# release workflow runs the same script on each target's runner).
dist:
	scripts/dist

services-up:
	scripts/services up

services-down:
	scripts/services down

services-status:
	scripts/services status

lint: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit and in-crate tests that need no local service.
unit:
	$(CARGO) test --workspace --lib --bins

# The test binaries run a few at a time (scripts/test-parallel: most of them wait on
# containers and rollouts, not the CPU); `cargo test --workspace` runs the same tests one
# binary after the other.
# The binaries are built before the services start: scripts/services starts the ECS
# emulator only when target/debug/ecs-emulator exists, which on a bare CI machine it
# does not yet. Sub-makes, one after the other, so that `make -j` cannot reorder them.
test:
	$(MAKE) build
	$(MAKE) services-up
	$(MAKE) lint
	$(WITH_SERVICES) scripts/test-parallel --workspace

# Every benchmark script there is, one after the other (slow: minutes), each with the local
# services' settings; one that fails does not stop the others, and is named at the end.
BENCHES := scripts/bench-startup.sh scripts/bench-health-wait.sh scripts/bench-img-build.sh scripts/bench-img-build-cache.sh scripts/bench-img-push.sh \
	tools/release-tag/benches/compare-git-cliff.sh scripts/bench-ecs-roll.sh scripts/bench-k8s-apply.sh \
	scripts/bench-kube-emulator.sh scripts/bench-scale.sh scripts/bench-install.sh
bench:
	$(MAKE) build
	$(MAKE) services-up
	$(CARGO) build --release --workspace --bins
	$(WITH_SERVICES) failed=""; \
	for bench in $(BENCHES); do \
		echo "== $$bench" >&2; \
		$$bench || failed="$$failed $$bench"; \
	done; \
	if [[ -n $$failed ]]; then echo "bench: failed:$$failed" >&2; exit 1; fi

# Every cargo-fuzz target (fuzz/: a workspace of its own on the nightly toolchain, never part
# of `make test`, CI or `cargo build --workspace`) for FUZZ_SECONDS each, one after the other.
# Each run starts from the seeds kept in fuzz/corpus/<target> and adds what it finds to
# fuzz/target/corpus/<target> (not to the repository). A crash stops here: its input is in
# fuzz/artifacts/<target>/, the whole run's output in fuzz/target/logs/<target>.log.
# The build, once, then reused by every run (the same flags, so `fuzz run` rebuilds nothing):
# - --sanitizer none: our crates forbid unsafe code (the workspace lint), so what a fuzzer
#   can find in them is a panic (an unwrap, an index, an overflow: debug assertions and
#   overflow checks stay on), which needs no sanitizer. AddressSanitizer would watch only the
#   dependencies' unsafe code (serde_json, regex, the AWS SDK: fuzzed upstream), for a slower
#   build of the whole tree and runs 2-3 times slower.
# - --codegen-units 16: cargo fuzz's default of 1 makes the release build of aws-sdk-ecs
#   alone take most of the build; the runs lose little.
# - nice: the build and the runs take every core for as long as they last.
# The kept seeds are small: after a long run, the fewest inputs that reach every edge it
# reached (hit counts aside), into a fresh NEW with the hand-written seeds copied in first:
#   fuzz/target/x86_64-unknown-linux-gnu/release/T -set_cover_merge=1 -use_counters=0 \
#     NEW fuzz/corpus/T fuzz/target/corpus/T
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := envelope image_reference conventional_commit dockerignore task_definition manifest
FUZZ_FLAGS := --sanitizer none --codegen-units 16
fuzz:
	rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	nice -n 10 $(CARGO) +nightly fuzz build $(FUZZ_FLAGS)
	mkdir -p fuzz/target/logs
	for target in $(FUZZ_TARGETS); do \
		echo "== fuzz $$target for $(FUZZ_SECONDS)s" >&2; \
		mkdir -p fuzz/target/corpus/$$target; \
		log=fuzz/target/logs/$$target.log; \
		if ! nice -n 10 $(CARGO) +nightly fuzz run $(FUZZ_FLAGS) $$target \
			fuzz/target/corpus/$$target fuzz/corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 >$$log 2>&1; then \
			tail -n 40 $$log >&2; \
			echo "fuzz: $$target failed (a crash leaves its input in fuzz/artifacts/$$target/)" >&2; \
			exit 1; \
		fi; \
		{ grep -E 'cov: .* corp: ' $$log | tail -n 1; grep -E '^Done ' $$log; } >&2 || true; \
	done

# The whole story of the README: dev on ECS, staging on EKS, a release, production by promotion.
demo:
	$(MAKE) build
	$(MAKE) services-up
	$(WITH_SERVICES) scripts/demo --story

# Only the dev half (ECS).
demo-dev:
	$(MAKE) build
	$(MAKE) services-up
	$(WITH_SERVICES) scripts/demo

# Removes what the demo created: the dev ECS services, the clusters' shop namespaces, the ECR
# repositories, the scratch release repository and target/demo.
demo-clean:
	$(WITH_SERVICES) scripts/demo --clean

clean: services-down
	$(CARGO) clean
