# The two entry points a fresh clone needs: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint services bench clean

$(BIN)/cin7xero: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

demo: $(BIN)/cin7xero
	$(BIN)/cin7xero demo

lint: $(BIN)/cin7xero
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

services:
	scripts/services.sh
	scripts/ensure-chromium.sh

test: $(BIN)/cin7xero services lint
	$(BIN)/pytest -q --durations=15

bench: $(BIN)/cin7xero services
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
