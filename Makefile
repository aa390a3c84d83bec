# shipkit: build, test, demo, local services, lint, bench.
# `make test` is what CI runs (.ci/run): it installs and starts the local services first.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
SERVICES_ENV := target/services.env
# Tests and the demo see the local stand-ins only through ordinary settings.
WITH_SERVICES := set -a && source $(SERVICES_ENV) && set +a &&

.PHONY: build test unit lint fmt clippy bench demo services-up services-down services-status clean

build:
	$(CARGO) build --workspace --bins

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

test: services-up lint
	$(WITH_SERVICES) $(CARGO) test --workspace --no-fail-fast

bench: build
	$(CARGO) build --release --workspace --bins
	scripts/bench-health-wait.sh

demo: services-up build
	$(WITH_SERVICES) scripts/demo

clean: services-down
	$(CARGO) clean
