# The two commands of the README: `make demo` and `make test`. Both work from a fresh
# clone: the virtualenv, the package with all extras, the dev tools and the services the
# tests need (scripts/setup/*.sh, each idempotent, installing under .cache/) are set up here.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv services lint typecheck docs pytest sentry-matrix bench clean

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]' -r requirements-dev.txt
	touch $@

venv: $(STAMP)

services: venv
	@set -e; for script in scripts/setup/*.sh; do \
		[ -e "$$script" ] || continue; \
		echo "== $$script"; bash "$$script"; \
	done

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

docs: venv
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

pytest: venv services
	$(BIN)/pytest

test: lint typecheck docs pytest sentry-matrix

# tests/sentry/ against the lowest sentry-sdk pyproject.toml declares and the
# newest on the index (scripts/sentry_matrix.sh; each installed under .cache/): 20 to
# 35 s, part of `make test`.
sentry-matrix: venv
	bash scripts/sentry_matrix.sh

# Everything on with no outside service: the toolbar and its panels (debug mode), metric
# lines recorded per request (no statsd host), Sentry capture to an embedded stand-in.
demo: venv
	FLASK_DEMO_EMBEDDED_SENTRY=true $(BIN)/flask --app demo_app run --debug --port $${PORT:-5000}

# The benchmarks print ratios from one run each (see docs/performance.rst); the load run
# needs the services (statsd daemon, wrk).
bench: venv services
	$(BIN)/python -m benchmarks.overhead
	$(BIN)/python -m benchmarks.peers
	$(BIN)/python -m benchmarks.opcodes
	$(BIN)/python -m benchmarks.memory_panel
	$(BIN)/python -m benchmarks.profiler
	$(BIN)/python -m benchmarks.load

clean:
	rm -rf $(VENV) .cache docs/_build .mypy_cache .ruff_cache .pytest_cache test-output
