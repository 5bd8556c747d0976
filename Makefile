# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Synthetic 7,000-staff trust: import, plan, apply, readiness summary (SQLite, in-process worker).
demo: $(STAMP)
	$(BIN)/pasa demo

## Whole suite on SQLite and PostgreSQL (finds or starts PostgreSQL; installs slapd), plus ruff and mypy.
test: $(STAMP)
	scripts/ensure-slapd.sh
	PASA_TEST_POSTGRES_URL="$$(PYTHON=$(BIN)/python scripts/ensure-postgres.sh)" && \
	  export PASA_TEST_POSTGRES_URL && \
	  $(BIN)/pytest -n 2 -q
	$(MAKE) --no-print-directory check

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

## Benchmarks on PostgreSQL; results written to docs/benchmarks.md.
bench: $(STAMP)
	PASA_BENCH_POSTGRES_URL="$$(PYTHON=$(BIN)/python scripts/ensure-postgres.sh)" \
	  $(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
