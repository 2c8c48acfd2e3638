# trackbridge — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help setup lock run test lint bench demo clean npm

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

# Everything comes from requirements-dev.lock (pinned, hashed: runtime + dev + embedded + bench extras);
# trackbridge itself is installed editable on top, without dependencies, and built with the
# setuptools and wheel from that lock (no build isolation, so nothing unpinned is fetched).
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install trackbridge with its dev tools

# pip-compile keeps the current pins where pyproject.toml still allows them; `make lock UPGRADE=1`
# moves every package to the newest version allowed. requirements.lock (the image) is compiled
# first and constrains requirements-dev.lock, so CI tests the versions the image ships;
# requirements-build.lock (the image's build stage: setuptools, wheel) follows the dev lock.
PIP_COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade)

lock: setup ## Regenerate the pinned lock files
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra dev --extra embedded --extra bench --constraint requirements.lock \
		--output-file requirements-dev.lock pyproject.toml
	$(PIP_COMPILE) --only-build-deps --build-deps-for wheel --constraint requirements-dev.lock \
		--output-file requirements-build.lock pyproject.toml

run: setup ## Run the worker and the Track API edge (port 8080) on an embedded broker with examples/sources.toml
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

# The official Customer.io Node client, which tests/edge drives against the edge: pinned in
# tests/edge/node/package-lock.json and installed with `npm ci` by `make setup` and `make test`.
NODE_DIR := tests/edge/node
NPM_STAMP := $(NODE_DIR)/node_modules/.installed
$(NPM_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

npm: $(NPM_STAMP) ## Install the Node test client (tests/edge/node) from its lock file
setup: $(NPM_STAMP)
test: $(NPM_STAMP)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info $(NODE_DIR)/node_modules

# The image, built with podman from an offline Debian base (deploy/image.py): no Docker engine and
# no container registry needed. image-tools installs what it takes from Debian's packages.
.PHONY: image image-tools
IMAGE_PACKAGES := podman mmdebstrap runc

image-tools: ## apt-get install podman, mmdebstrap and runc (for make image; as root)
	@missing=""; for tool in $(IMAGE_PACKAGES); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

image: setup image-tools ## Build deploy/Dockerfile with podman (offline Debian base); prints its size
	$(BIN)/python deploy/image.py build
