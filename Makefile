# Hoist: every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOIST_CONFIG ?= examples/embedded
PYTEST_ARGS ?=

# The virtual environment is rebuilt when the project's dependencies change.
STAMP := $(VENV)/.installed

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml scripts/install-python-deps.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install-python-deps.sh
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create .venv with Hoist, the real vLLM (CPU) and the dev tools

.PHONY: system-deps
system-deps: ## Install the system packages the test tiers use (Prometheus, Redis, wrk)
	bash scripts/install-system-deps.sh

.PHONY: run
run: venv ## Start the embedded default (real vLLM, SmolLM2-135M-Instruct) on :8080
	$(PY) -m data_plane.inference.engine_api.prepare smollm2-135m-instruct
	$(VENV)/bin/hoist up -f $(HOIST_CONFIG)

.PHONY: operator
operator: venv ## Run the Kubernetes operators against the current kubeconfig (HOIST_OPERATOR_*)
	$(PY) -m control_plane.operator

.PHONY: fmt
fmt: venv ## Format and fix what ruff can fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: lint
lint: venv ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: typecheck
typecheck: venv ## mypy --strict on both packages
	$(VENV)/bin/mypy

.PHONY: contracts
contracts: venv ## import-linter: the architecture's layering
	$(VENV)/bin/lint-imports

.PHONY: static
static: lint typecheck contracts ## Everything but the tests

.PHONY: test
test: venv system-deps ## All test tiers: unit, integration, e2e (real vLLM on CPU)
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: venv ## Pure logic only
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: venv system-deps ## Real processes and HTTP on 127.0.0.1
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

.PHONY: test-faults
test-faults: venv ## Faults under load on a simulated fleet (hung/killed engines, gateway restarts)
	$(PY) -m pytest -m faults $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: venv ## The real vLLM engine on CPU
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

.PHONY: check
check: static test ## The whole quality gate: format, lint, types, contracts, all tests

.PHONY: crds
crds: venv ## Regenerate k8s/crds from control_plane/api
	$(VENV)/bin/hoist crds --out k8s/crds

.PHONY: bench-http-client
bench-http-client: venv ## aiohttp vs httpx under 256 concurrent requests
	$(PY) bench/http_client.py

.PHONY: bench-sim
bench-sim: venv ## Streams per core of the engine simulator
	$(PY) bench/sim_streams_per_core.py

.PHONY: bench-gateway
bench-gateway: venv system-deps ## Gateway overhead, streaming and routing (`.venv/bin/pip install vllm-router` for the peer)
	$(PY) bench/gateway_overhead.py
	$(PY) bench/gateway_streaming.py --upstream sim
	$(PY) bench/gateway_routing.py --duration 30 --repeat 2

.PHONY: bench-autoscaler
bench-autoscaler: venv ## Replay the Azure trace: Hoist's autoscaler vs an HPA baseline
	$(PY) bench/autoscaler_replay.py --write

.PHONY: bench-fairness
bench-fairness: venv ## A quiet tenant's TTFT beside a noisy one, with and without fair queuing
	$(PY) bench/tenant_fairness.py --seconds 40 --quiet-rps 1 --replicas 1 --cap 4

.PHONY: bench-load
bench-load: venv ## AIPerf (a load tool users run) against `hoist up -f examples/sim`; URL=... for your own
	$(PY) bench/load_tool.py $(if $(URL),--url $(URL),--fleet sim) --duration 60

.PHONY: monitoring
monitoring: venv ## Regenerate the Grafana dashboards and the PrometheusRule
	$(PY) -m monitoring.generate

REGISTRY ?= ghcr.io/hoist-dev
TAG ?= $(shell git describe --tags --always 2>/dev/null || echo dev)

.PHONY: images
images: ## Build the four images (needs a Docker engine)
	for c in gateway controller sidecar engine; do \
		docker build -f docker/Dockerfile.$$c -t $(REGISTRY)/hoist-$$c:$(TAG) . || exit 1; \
	done

.PHONY: constraints
constraints: ## Re-pin docker/constraints.txt after a dependency change
	bash docker/update-constraints.sh

.PHONY: clean
clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
