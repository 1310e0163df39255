# The two entry points a fresh clone needs: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint services bench clean lock

# Every dependency, runtime and development, comes from the lock with its hashes (pip refuses anything
# else); the project itself is installed on top without dependencies. Regenerate the locks with
# `make lock` after changing pyproject.toml.
$(BIN)/cin7xero: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

LOCK_FLAGS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links

lock: $(BIN)/cin7xero
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile $(LOCK_FLAGS) -o requirements.lock pyproject.toml
	$(BIN)/pip-compile $(LOCK_FLAGS) --extra dev -o requirements-dev.lock pyproject.toml

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
	# A burst of 20 webhooks at 10/s with Cin7 and Xero held to their real 60 calls a minute.
	$(BIN)/python -m benchmarks.webhook_latency --real-limits --rate 10 --duration 2

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
