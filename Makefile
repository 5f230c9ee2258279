# The two commands of the README: `make demo` and `make test`.
# Both set up everything they need on a fresh machine and are fast the second time.

VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
STAMP := $(VENV)/.installed

.PHONY: demo test setup lint typecheck ci clean-venv

$(STAMP): pyproject.toml scripts/ensure-venv scripts/find-python
	@scripts/ensure-venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

setup: $(STAMP)
	$(PY) manage.py migrate --noinput

## demo: set up, build the demo study, serve it with a task worker on $(HOST):$(PORT)
demo: setup
	$(PY) manage.py screening_build
	$(PY) manage.py demo_study
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

## test: set up, then run the whole test suite
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy .

ci:
	.ci/run

clean-venv:
	rm -rf $(VENV)
