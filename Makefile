# The two commands of the README: `make demo` and `make test`. Both work from a fresh
# clone: the virtualenv, the package with all extras, the dev tools and the services the
# tests need (scripts/setup/*.sh, each idempotent, installing under .cache/) are set up here.
# `make test` runs the matrix (scripts/matrix.py): the host's Python, Python 3.13 and 3.14
# in chroots it builds under .cache/ (scripts/chroot.sh, root and Debian's archive), and
# the lowest declared dependencies (scripts/min_deps.py). `make pytest` is the quick loop.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian's other Pythons for the matrix: py313 (trixie), py314 (forky).
CHROOTS := py313 py314

.PHONY: demo test venv services chroots min-deps matrix lint typecheck docs pytest dist \
	constraints sentry-matrix bench mutate mutate-score clean

# Every installed version is pinned by constraints/dev.txt (`make constraints` updates it).
$(STAMP): pyproject.toml requirements-dev.txt constraints/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints/dev.txt -e '.[all]' -r requirements-dev.txt
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

# Fails loudly when a chroot cannot be built: a missing Python is never skipped.
chroots:
	@set -e; for name in $(CHROOTS); do bash scripts/chroot.sh build $$name; done

min-deps: venv
	$(BIN)/python scripts/min_deps.py

# Every leg, then one summary line; any failing leg fails.
matrix: venv services chroots min-deps
	$(BIN)/python scripts/matrix.py

test: lint typecheck docs matrix sentry-matrix

# tests/sentry/ against the lowest sentry-sdk pyproject.toml declares and the
# newest on the index (scripts/sentry_matrix.sh; each installed under .cache/): 20 to
# 35 s, part of `make test`.
sentry-matrix: venv
	bash scripts/sentry_matrix.sh

# The sdist and the wheel (built from the sdist), checked for PyPI.
dist: venv
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*

# On purpose only: the newest releases of everything into constraints/dev.txt.
constraints:
	bash scripts/update_constraints.sh

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
	$(BIN)/python -m benchmarks.request_path
	$(BIN)/python -m benchmarks.gc_pauses
	$(BIN)/python -m benchmarks.memory_panel
	$(BIN)/python -m benchmarks.profiler
	$(BIN)/python -m benchmarks.load

# Mutation testing of the core modules (mutmut; [tool.mutmut] in pyproject.toml lists the
# modules and their focused tests): a fresh run into mutants/, then the score per module
# (mutation/score.py; survivors kept on purpose are listed in mutation/survivors.txt).
# Slow (2,602 mutants, about 0.7 a second on two busy cores), so not part of `make test`.
# MUTATE_JOBS sets the parallel mutants; `make mutate-score` prints the last run's table.
MUTATE_JOBS ?= 2

mutate: venv
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(MUTATE_JOBS) >mutants.log 2>&1 || { tail -40 mutants.log; exit 1; }
	$(BIN)/python mutation/score.py

mutate-score: venv
	$(BIN)/python mutation/score.py

# Never through a chroot's mounts (a run killed with SIGKILL leaves them): that would
# delete the checkout or /dev.
clean:
	@if findmnt -rn -o TARGET | grep -q "^$$(realpath -m .cache)/"; then \
		echo "mounts left under .cache/ (findmnt): umount -R them first" >&2; exit 1; fi
	rm -rf $(VENV) .cache mutants mutants.log docs/_build .mypy_cache .ruff_cache .pytest_cache test-output dist
