# ganreport — `make help` lists the targets.
SHELL := /bin/bash
PROFILE ?= quick
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
PYTHON ?= python3

.DEFAULT_GOAL := help
.PHONY: setup test test-unit test-notebooks report lab bench clean help

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name ganreport --display-name "Python (ganreport)" >/dev/null
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  echo "note: Chromium not found; reports/report.pdf needs it (Debian: apt-get install chromium). The HTML report is built without it."
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv, install the package with [dev] extras, register the 'ganreport' Jupyter kernel

test: $(STAMP)  ## unit tests + notebooks under nbval (smoke profile)
	$(PY) -m pytest tests -q -p no:cacheprovider
	$(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-kernel-name ganreport \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/
	GANREPORT_REQUIRE_SMOKE_RUN=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_notebook_stages.py  # 04 on nbval's smoke run

test-unit: $(STAMP)  ## unit tests only
	$(PY) -m pytest tests -q -p no:cacheprovider

report: $(STAMP)  ## run all notebooks for PROFILE (default quick), build reports/report.{html,pdf}
	@$(PY) -m ganreport report --profile $(PROFILE)

lab: $(STAMP)  ## open the notebooks in JupyterLab (installs the [lab] extra on first use)
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install -q -e '.[dev,lab]'
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)  ## run the benchmarks in benchmarks/
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:  ## remove runs/, reports/ and caches (keeps .venv)
	rm -rf runs reports data/cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18
