# Everyday commands. The README describes them; scripts/ hold the longer logic.
#
#   make run                  run web + worker + beat (+ a local Redis) with the sandbox
#   make test [ARGS="-k x"]   lint, migration and import checks, then pytest on throwaway PG + Redis
#   make bench                run the benchmarks (bench/run)
#   make lint / make format   ruff
#   make venv                 create or refresh .venv (dev extras included)

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed-from-pyproject
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test bench lint format venv

help:
	@echo "targets: run, test [ARGS=...], bench, lint, format, venv"

venv: $(VENV_STAMP)

# pip runs again only when pyproject.toml is newer than the stamp (new or changed dependencies).
$(VENV_STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { \
		echo "error: '$(PYTHON)' not found: install Python 3.11+ or run make PYTHON=/path/to/python3.11 ..." >&2; \
		exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "error: Python 3.11+ needed, '$(PYTHON)' is $$($(PYTHON) --version 2>&1 | head -n1); run make PYTHON=/path/to/python3.11 ..." >&2; \
		exit 1; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV) || { \
		echo "error: '$(PYTHON) -m venv' failed; on Debian install the python3-venv package" >&2; \
		rm -rf $(VENV); exit 1; }
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

run: venv
	@scripts/run.sh

test: venv
	@scripts/test.sh $(ARGS)

bench: venv
	@if [ -e bench/run ]; then bench/run $(ARGS); else echo "no benchmarks yet"; fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
