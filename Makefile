# wavetool: `make demo` runs the whole pipeline on sample_data/ into demo/; `make test` runs the suite.
# Both create .venv and install the project (and, where apt is available as root, the system packages
# the report renderer and the PSPP cross-check use).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WT := $(BIN)/wavetool --study demo
APT_PACKAGES := libharfbuzz-subset0 poppler-utils pspp r-base-core r-cran-survey

# test-fast: everything not marked slow (fault injection, end-to-end runs, PDF rendering, packaging,
# the R/PSPP cross-checks), in parallel, with a quarter of the property-test examples: the edit-test loop.
# `make test` (CI) still runs everything.
.PHONY: demo test test-fast lint format bench clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

# Best effort: faster, quieter PDF rendering (harfbuzz subsetting), pdftoppm, and GNU PSPP for the
# cross-check test. wavetool works without them.
system-deps:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "installing$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
	    (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1) || \
	    echo "could not install$$missing (continuing without)"; fi; \
	fi

demo: $(STAMP) system-deps
	rm -rf demo
	$(BIN)/wavetool init demo >/dev/null
	cp sample_data/wavetool.toml demo/wavetool.toml
	cp -r sample_data/inbox demo/inbox
	$(WT) run --wave 1
	$(WT) run --wave 2
	$(WT) run --wave 3
	$(WT) run --wave 4 --final
	$(WT) report --wave 4 --final   # inputs unchanged since the run: re-renders nothing
	$(WT) tabulate --wave 4 --subscriber quebec --question Q1 --question C1
	$(WT) tabulate --wave 4 --all --format parquet --output demo/tables/wave-4.parquet
	$(WT) status
	@echo
	@echo "Demo study in demo/: database demo/wavetool.duckdb, config demo/wavetool.toml, run log demo/wavetool.log"
	@echo "Tables: demo/tables/wave-N.csv; reports: demo/reports/wave-N/<subscriber>.pdf; e-mails: demo/outbox/*.eml"

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n 2 -q

test-fast: $(STAMP)
	WAVETOOL_TEST_FAST=1 $(BIN)/python -m pytest -n 2 -q -m "not slow"

lint:
	$(BIN)/ruff check src tests benchmarks sample_data
	$(BIN)/ruff format --check src tests benchmarks sample_data

format:
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf demo dist build .pytest_cache
