# Developer and CI entry points for django-steps. `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Interpreter that creates .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k transitions -x".
PYTEST_ARGS ?=
# Extra arguments for nox, e.g. make matrix NOX_ARGS="-s tests-3.12".
NOX_ARGS ?=
# Extra arguments for the benchmark, e.g. make bench BENCH_ARGS="--rounds 100".
BENCH_ARGS ?=
# install: test and demo targets install missing system packages when they can;
# check: they only say which are missing (scripts/install-system-packages).
SYSTEM_PACKAGES ?= install

PYTHON_SOURCES := django_steps tests bench example_project scripts docs/_ext noxfile.py
MIGRATED_APPS := django_steps testapp

.PHONY: help test test-sqlite test-postgres lint format matrix demo serve docs docs-serve bench

help:
	@echo "make test           run the suite on SQLite, then on a throwaway PostgreSQL cluster"
	@echo "make test-sqlite    run the suite on SQLite only"
	@echo "make test-postgres  run the suite on PostgreSQL only"
	@echo "make reliability    long concurrency, fault and fuzz runs on PostgreSQL (docs/reliability.md)"
	@echo "make lint           ruff check, ruff format --check, mypy, import layering, missing migrations"
	@echo "make format         apply ruff fixes and formatting"
	@echo "make matrix         run the suite on SQLite across Django 4.2, 5.2 and 6.x (nox)"
	@echo "make demo           run example claims through the workflow on a fresh SQLite database"
	@echo "make serve          the example project with its admin on http://127.0.0.1:8000/admin/"
	@echo "make docs           build the documentation strictly into site/"
	@echo "make docs-serve     serve the documentation on http://127.0.0.1:8001/ while editing"
	@echo "make bench          time the services against django-fsm-2 (SQLite, PostgreSQL)"
	@echo "make system-packages  install missing Debian packages (test and demo do it first)"
	@echo "Pass pytest arguments with PYTEST_ARGS=\"...\"; SYSTEM_PACKAGES=check installs nothing."

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { echo "$(PYTHON) -m venv failed: on Debian/Ubuntu, \
		install python3-venv (make system-packages does)" >&2; exit 1; }

# Debian packages (PostgreSQL, Graphviz, Chromium, fonts, Redis) installed when missing,
# as root or with passwordless sudo; otherwise it names them and what is skipped without
# them. Nothing runs apt-get when all are present. Listed before the .venv stamps, so
# python3-venv is there before .venv is made.
.PHONY: system-packages
system-packages:
	@VENV=$(VENV) PYTHON=$(PYTHON) scripts/install-system-packages \
		$(if $(filter check,$(SYSTEM_PACKAGES)),--check)

# One stamp per dependency group; reinstalled when pyproject.toml changes.
# pip >= 25.1 is needed for --group.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --editable . --group $*
	@touch $@

test: test-sqlite test-postgres

test-sqlite: system-packages $(VENV)/.installed-test
	@printf '\n===== pytest on SQLite =====\n'
	DJANGO_STEPS_TEST_DB=sqlite $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: system-packages $(VENV)/.installed-test
	@printf '\n===== pytest on PostgreSQL (throwaway cluster) =====\n'
	scripts/with-postgres $(BIN)/pytest $(PYTEST_ARGS)

# The long form of the reliability tests: 8 worker processes x 50 calls, more objects,
# more hypothesis examples (DJANGO_STEPS_RELIABILITY=long), and the tests marked slow.
RELIABILITY_TESTS := tests/reliability tests/test_faults.py tests/test_properties.py \
	tests/test_fuzz_inputs.py tests/test_admin_fuzz.py

.PHONY: reliability
reliability: system-packages $(VENV)/.installed-test
	@printf '\n===== reliability, long form, on PostgreSQL (throwaway cluster) =====\n'
	DJANGO_STEPS_RELIABILITY=long WITH_POSTGRES_REQUIRED=1 scripts/with-postgres \
		$(BIN)/pytest $(RELIABILITY_TESTS) --run-slow $(PYTEST_ARGS)

lint: $(VENV)/.installed-lint
	$(BIN)/ruff check $(PYTHON_SOURCES)
	$(BIN)/ruff format --check $(PYTHON_SOURCES)
	$(BIN)/mypy django_steps
	$(BIN)/lint-imports
	DJANGO_SETTINGS_MODULE=tests.settings DJANGO_STEPS_TEST_DB=sqlite \
		$(BIN)/python -m django makemigrations --check --dry-run $(MIGRATED_APPS)

format: $(VENV)/.installed-lint
	$(BIN)/ruff check --fix-only $(PYTHON_SOURCES)
	$(BIN)/ruff format $(PYTHON_SOURCES)

matrix: $(VENV)/.installed-dev
	$(BIN)/nox $(NOX_ARGS)

# The example project runs from its own directory; its database is example_project/db.sqlite3.
EXAMPLE := cd example_project && $(abspath $(BIN))/python manage.py
# Material for MkDocs prints a banner about its successor on every build.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

demo: system-packages $(VENV)/.installed-test
	rm -f example_project/db.sqlite3
	$(EXAMPLE) migrate --verbosity 0
	$(EXAMPLE) steps_import claims/workflows/claims.yaml
	$(EXAMPLE) demo
	@echo
	@echo "See these claims in the admin: run 'make serve', open http://127.0.0.1:8000/admin/"
	@echo "and log in as demo / demo."

serve: $(VENV)/.installed-test
	$(EXAMPLE) migrate --verbosity 0
	$(EXAMPLE) demo_setup
	$(EXAMPLE) runserver 127.0.0.1:8000

docs: $(VENV)/.installed-docs
	$(MKDOCS) build --strict

docs-serve: $(VENV)/.installed-docs
	$(MKDOCS) serve --dev-addr 127.0.0.1:8001

# Not part of make test or CI: timings need a quiet machine (docs/performance.md).
bench: $(VENV)/.installed-bench
	@printf '\n===== benchmark on SQLite (in memory) =====\n'
	$(BIN)/python -m bench.run --db sqlite $(BENCH_ARGS)
	@printf '\n===== benchmark on PostgreSQL (throwaway cluster) =====\n'
	scripts/with-postgres $(BIN)/python -m bench.run --db postgres --throughput $(BENCH_ARGS)
	@printf '\n===== benchmark of the timer sweep on PostgreSQL (throwaway cluster) =====\n'
	scripts/with-postgres $(BIN)/python -m bench.timers
