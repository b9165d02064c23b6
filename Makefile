# The README's commands. `make run` and `make test` set everything up on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test e2e fuzz bench lint format migrate clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

migrate: $(INSTALLED)
	$(BIN)/alembic upgrade head

run: migrate
	$(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT)

# The suite runs on SQLite, then again on PostgreSQL when TEST_DATABASE_URL names one.
test: $(INSTALLED)
	env -u TEST_DATABASE_URL $(BIN)/pytest
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again on $$TEST_DATABASE_URL"; \
		$(BIN)/pytest; \
	fi

# The dashboard in a real browser against the API on PostgreSQL (installs chromium if missing).
e2e: $(INSTALLED)
	tests/e2e/run.sh

# schemathesis against the live API on a throwaway PostgreSQL database (jobs_fuzz); fixed seed.
fuzz: $(INSTALLED)
	scripts/fuzz.sh

# Throughput and latency on PostgreSQL against a bare ASGI ceiling (docs/benchmarks.md).
bench: $(INSTALLED)
	bench/run.sh

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache jobs.db
