# The two entry points of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# Tests run on SQLite always and on this Postgres too; `make test TEST_DATABASE_URL=` skips it.
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: setup demo test lint bench browser

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	@# CPU torch first where there is no GPU: a bare `torch` requirement pulls a multi-GB CUDA build.
	command -v nvidia-smi >/dev/null 2>&1 || $(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev]"
	touch $@

CMR := $(VENV)/bin/cmrsearch
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_ARGS ?=

# Phantom archive -> catalog -> trained model -> evaluation -> vectors -> the UI on
# http://127.0.0.1:8501 (SQLite under ./var); a re-run reuses every step already done.
demo: setup
	$(CMR) demo $(DEMO_ARGS)

# The browser test drives Debian's chromium (Playwright's own browser download fails here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser test"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint browser
	CMRSEARCH_TEST_DATABASE_URL="$(TEST_DATABASE_URL)" $(PY) -m pytest
