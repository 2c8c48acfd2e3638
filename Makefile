# trackbridge — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help setup run test lint bench demo clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install trackbridge with its dev tools

run: setup ## Run the worker on an embedded broker with examples/sources.toml
	$(BIN)/trackbridge run --sources examples/sources.toml

test: setup ## Run the whole test suite
	$(BIN)/pytest -q

lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup ## Print mapping-core and worker throughput/latency figures
	$(BIN)/python -m bench

demo: setup ## Start the embedded broker, send the examples, print each topic's records
	$(BIN)/trackbridge demo --sources examples/sources.toml --input examples/envelopes.jsonl

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
