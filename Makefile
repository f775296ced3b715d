# Every target bootstraps first (fast when all is present): a fresh clone needs nothing but
# Python 3.11+, Java 17+ and Maven (or root, to install Maven and Redis from Debian's packages).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.local/venv
VENV_BIN := .local/venv/bin
SWITCHYARD := $(VENV_BIN)/switchyard
# mypy refuses a directory without Python files, so scripts/ joins once it has some.
# --explicit-package-bases names modules by their path (tests.unit.ingress.conftest), since every
# test folder may have a conftest.py and mypy refuses two top-level modules of one name.
TYPED_PATHS := contracts services tests $(if $(wildcard scripts/*.py),scripts)

.PHONY: help bootstrap run up down status test test-unit check lint fmt bench catalogue clickhouse-ddl \
	clean distclean

help:
	@echo "make run        start the whole local stack in the foreground (Ctrl-C stops it)"
	@echo "make up|down    start the stack in the background / stop it; make status shows it"
	@echo "make test       the whole test suite (starts its own Kafka, Redis, services)"
	@echo "make test-unit  unit tests only (no services)"
	@echo "make check      format check, lint, mypy --strict, then the tests"
	@echo "make fmt        format and autofix lint"
	@echo "make bench      benchmarks against the local stack"
	@echo "make catalogue  rebuild the model catalogue"
	@echo "make clickhouse-ddl  regenerate deploy/clickhouse/cluster.sql from the migrations"
	@echo "make clean      stop the stack, delete local state (keeps the venv and Kafka jars)"

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	$(SWITCHYARD) run

up: bootstrap
	$(SWITCHYARD) up

down: bootstrap
	$(SWITCHYARD) down

status: bootstrap
	$(SWITCHYARD) status

test: bootstrap
	$(VENV_BIN)/pytest

test-unit: bootstrap
	$(VENV_BIN)/pytest -m "not integration and not e2e"

lint: bootstrap
	$(VENV_BIN)/ruff format --check .
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/mypy $(TYPED_PATHS)

fmt: bootstrap
	$(VENV_BIN)/ruff format .
	$(VENV_BIN)/ruff check --fix .

check: lint
	$(MAKE) test

# wrk (Debian's package) drives the throughput phase: its C client leaves the two cores to the
# gateway. Without it (not root, no apt) the bench falls back to a Python client and says so.
bench: bootstrap
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }; } || true
	$(VENV_BIN)/python scripts/bench_decision.py
	$(SWITCHYARD) up
	$(VENV_BIN)/python scripts/bench.py
	$(VENV_BIN)/python scripts/bench_analytics.py
	$(VENV_BIN)/python scripts/bench_dashboard.py

catalogue: bootstrap
	$(VENV_BIN)/python scripts/build_catalogue.py

# The ClickHouse cluster's DDL, generated from metering's migrations; a unit test fails until a
# new migration has been run through this.
clickhouse-ddl: bootstrap
	$(VENV_BIN)/python -m services.metering.cluster_ddl deploy/clickhouse/cluster.sql

# Stops the developer stack (SWITCHYARD_HOME, default .local) and the test suite's, then deletes
# their state. The venv and the Kafka jars stay: they are installs, not state.
clean:
	@if [[ -x $(SWITCHYARD) ]]; then \
		$(SWITCHYARD) down; \
		SWITCHYARD_HOME=.local/test $(SWITCHYARD) down; \
	fi
	rm -rf .local/test .local/log .local/run .local/redis .local/clickhouse \
		.local/kafka/data .local/kafka/cluster.id .local/kafka/server.properties \
		.local/admin_key .local/stack.env

distclean: clean
	rm -rf .local
