# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench clean assets

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Front-end assets: NHS.UK frontend and htmx from npm (web/package-lock.json), copied into the
# directory the web application serves. Built here, not committed. axe-core stays in
# web/node_modules for the browser tests.
VENDOR := src/pasa/web/static/vendor
NPM_DIST := web/node_modules
ASSETS_STAMP := $(VENDOR)/.built

$(ASSETS_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR)/assets $(VENDOR)/*.css $(VENDOR)/*.js
	cp $(NPM_DIST)/nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.css $(VENDOR)/
	cp $(NPM_DIST)/nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.js $(VENDOR)/
	cp -R $(NPM_DIST)/nhsuk-frontend/dist/nhsuk/assets $(VENDOR)/assets
	cp $(NPM_DIST)/htmx.org/dist/htmx.min.js $(VENDOR)/
	touch $@

## NHS.UK frontend CSS/JS/images and htmx, from npm, into src/pasa/web/static/vendor.
assets: $(ASSETS_STAMP)

## Synthetic 7,000-staff trust: import, plan, apply, readiness summary (SQLite, in-process worker).
demo: $(STAMP) assets
	$(BIN)/pasa demo

## Whole suite on SQLite and PostgreSQL (finds or starts PostgreSQL; installs slapd), plus ruff and mypy.
test: $(STAMP) assets
	scripts/ensure-slapd.sh
	scripts/ensure-chromium.sh
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
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache web/node_modules $(VENDOR)/assets $(VENDOR)/*.css $(VENDOR)/*.js $(ASSETS_STAMP)
