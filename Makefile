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

CMR := $(VENV)/bin/cmrsearch
DEMO := var/demo

# Synthetic archive -> catalog -> trained model -> vectors -> a search; re-runs reuse each step.
demo: setup
	$(CMR) db upgrade
	test -f $(DEMO)/archive/phantom.json || \
		$(CMR) phantom $(DEMO)/archive --studies 120 --seed 0 --force
	$(CMR) index $(DEMO)/archive/dicom --reports $(DEMO)/archive/reports.jsonl
	test -f $(DEMO)/model/best/model.safetensors || \
		$(CMR) train --out $(DEMO)/model --epochs 20 --seed 0
	$(CMR) embed --model $(DEMO)/model/best
	$(CMR) search "dilated left ventricle with severely impaired function" \
		--model $(DEMO)/model/best --k 5
	$(CMR) status

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	CMRSEARCH_TEST_DATABASE_URL="$(TEST_DATABASE_URL)" $(PY) -m pytest
