# Modelyard: every entry point. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PACKAGES := libs/events libs/devstack libs/grpc libs/artifacts libs/blobs libs/inference services/dataset-svc services/job-svc services/trainer-svc services/registry-svc services/deploy-svc clients/edge-agent clients/yard clients/console
PYPROJECTS := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
PROTOS := $(shell find proto -name '*.proto' 2>/dev/null)
STATE := .modelyard/infra

.DEFAULT_GOAL := help
.PHONY: help venv protos lint format typecheck k8s-check test unit integration demo infra-up infra-down bench bench-events bench-latency bench-training bench-datasets bench-registry bench-deploy bench-audit catalog clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): constraints.txt requirements-dev.txt $(PYPROJECTS)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt $(foreach p,$(PACKAGES),-e $(p)) -r requirements-dev.txt
	touch $@

venv: $(STAMP) ## Create .venv with every package and tool (pinned by constraints.txt)

# A stamp, not a phony target: the stubs are made again only when a .proto or the venv changed, so
# two makes at once (CI runs the demo beside the suite) never rewrite them under each other.
PROTO_STAMP := libs/grpc/src/modelyard/v1/.generated

protos: $(PROTO_STAMP) ## Generate gRPC stubs from proto/ (when a .proto changed)

$(PROTO_STAMP): $(STAMP) $(PROTOS)
ifneq ($(PROTOS),)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=libs/grpc/src --grpc_python_out=libs/grpc/src --pyi_out=libs/grpc/src $(PROTOS)
endif
	touch $@

format: $(STAMP) ## Format the code with ruff
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

lint: protos ## ruff lint + format check, mypy --strict on libs/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

typecheck: lint

k8s-check: $(STAMP) ## Render deploy/k8s (kustomize); check it offline: Kubernetes and CRD schemas, pod rules
	$(PY) -m tools.k8s_check deploy/k8s

test: lint k8s-check ## The whole suite: lint, manifests, unit and integration tests on the embedded stack
	$(PY) -m pytest --durations=25  # the slowest, in CI's log: where its 30 minutes go

# The console's browser tests (tests/integration/test_console.py) drive Debian's Chromium; as root
# (CI, the dev container) it is installed here, else the test says how and skips.
.PHONY: browser
browser: ## Install headless Chromium from Debian's packages for the console's browser tests
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y --no-install-recommends chromium; else echo "chromium is missing: sudo apt-get install chromium (the console's browser test skips without it)"; fi; }

test: browser

unit: $(STAMP) ## Fast unit tests only (no servers)
	$(PY) -m pytest -m "not integration"

demo: $(STAMP) protos ## The whole mission on the embedded stack, then the console until Ctrl-C (DEMO_ARGS=--no-wait: stop at the end)
	$(PY) -m modelyard_devstack.demo $(DEMO_ARGS)

infra-up: $(STAMP) ## Start embedded PostgreSQL and Tansu in the background; print their URLs
	$(PY) -m modelyard_devstack up --state-dir $(STATE)

infra-down: $(STAMP) ## Stop what infra-up started
	$(PY) -m modelyard_devstack down --state-dir $(STATE)

bench: bench-events bench-latency bench-training bench-datasets bench-registry bench-deploy bench-audit ## Every benchmark; results in bench/results/

bench-events: $(STAMP) ## Event store vs the eventsourcing library, read-all vs raw SELECT
	$(PY) bench/events_bench.py

bench-latency: $(STAMP) ## Append → projection visible vs its floor (a commit + a raw Kafka hop), p50/p99 per rate
	$(PY) bench/projection_latency_bench.py $(LATENCY_ARGS)

bench-training: $(STAMP) protos ## Trainer vs bare PyTorch (ARGS="--device cuda" on GPU), job start latency, metrics vs MLflow
	$(PIP) install -q -r bench/requirements-bench.txt -c constraints.txt
	$(PY) bench/training_bench.py $(ARGS)
	$(PY) bench/job_latency_bench.py
	$(PY) bench/metrics_ingest_bench.py

bench-datasets: $(STAMP) protos ## Dataset upload via dataset-svc vs copying the files on disk (DATASET_ARGS="--quick")
	$(PY) bench/dataset_upload_bench.py $(DATASET_ARGS)

bench-registry: $(STAMP) protos ## Completed run → version registered (p50/p99); signed download vs a static file server
	$(PY) bench/registry_bench.py $(REGISTRY_ARGS)
	$(PY) bench/registry_download_bench.py $(DOWNLOAD_ARGS)

bench-deploy: $(STAMP) protos ## Rollout to 1,000 edge agents (DEPLOY_ARGS="--quick"); agent download vs a static server
	$(PY) bench/deploy_bench.py $(DEPLOY_ARGS)
	$(PY) bench/deploy_download_bench.py $(EDGE_DOWNLOAD_ARGS)

bench-audit: $(STAMP) protos ## Verify and replay of 1M events vs a raw read, peak memory at 100k vs 1M (AUDIT_ARGS="--quick")
	$(PY) bench/audit_bench.py $(AUDIT_ARGS)

# Not part of `make test` or `make bench`: it kills processes at random for minutes (issue 16, item 4).
.PHONY: chaos
chaos: $(STAMP) protos ## Fault campaign: SIGKILL every process kind under load, check nothing lost (CHAOS_ARGS="--seed 7")
	$(PY) bench/chaos.py $(CHAOS_ARGS)

catalog: $(STAMP) ## Regenerate docs/event-catalog.md and docs/asyncapi.json from the event classes
	$(PY) -m modelyard_events.catalog_doc > docs/event-catalog.md
	$(PY) -m modelyard_events.asyncapi_doc > docs/asyncapi.json

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
