# The two entry points of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# Tests run on SQLite always and on this Postgres too; `make test TEST_DATABASE_URL=` skips it.
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: setup demo test lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	@# CPU torch first where there is no GPU: a bare `torch` requirement pulls a multi-GB CUDA build.
	command -v nvidia-smi >/dev/null 2>&1 || $(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev]"
	touch $@

demo: setup
	$(VENV)/bin/cmrsearch db upgrade
	$(VENV)/bin/cmrsearch status

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	CMRSEARCH_TEST_DATABASE_URL="$(TEST_DATABASE_URL)" $(PY) -m pytest
