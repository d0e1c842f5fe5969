# Assistente Digital — the two commands are `make up` and `make test`; `make help` lists the rest.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := .venv
PY := $(VENV)/bin/python
TESTBED := $(VENV)/bin/assistente-testbed
export UV_PYTHON_DOWNLOADS := never

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

# ---- set-up (idempotent: a second run skips what is already there) -------------------------
.PHONY: setup setup-system setup-python tools
setup: ## Install system packages, the Python env and the Go-built test bed (skips what exists)
	@hack/setup.sh all

setup-system:
	@hack/setup.sh system

setup-python:
	@hack/setup.sh python

tools: ## Build the Kubernetes test bed binaries (cached by version)
	@hack/setup.sh tools

# ---- the product, locally ------------------------------------------------------------------
.PHONY: up cluster cluster-down cluster-demo
up: setup ## Set up, then run the whole assistant locally (widget at http://127.0.0.1:8000/); LOGS=1 ships logs, METRICS=0 skips Prometheus
	@$(TESTBED) up $(if $(filter 1,$(LOGS)),--logs) $(if $(filter 0,$(METRICS)),--no-metrics)

cluster: setup ## Start the local cluster: control plane, kwok nodes, a real node, the operator pod
	@$(TESTBED) cluster up

cluster-demo: ## Deploy the assistant with its operator on the real node (until Ctrl-C)
	@$(TESTBED) cluster demo

cluster-down: ## Stop the local control plane and everything it started
	@$(TESTBED) cluster down

# ---- quality -------------------------------------------------------------------------------
.PHONY: test lint typecheck lint-imports lint-delivery test-python
test: setup ## Set up, then run every check and test suite against real services
	@start=$$(date +%s); \
	$(MAKE) lint typecheck lint-imports lint-delivery test-python $(EXTRA_TEST_TARGETS); \
	echo "make test: all suites passed in $$(( $$(date +%s) - start ))s"

lint: ## ruff (lint + format check)
	@echo "== ruff"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: ## mypy --strict on our packages
	@echo "== mypy --strict"
	@$(VENV)/bin/mypy $(MYPY_TARGETS)

lint-imports: ## import-linter: the layer contracts in every */.importlinter
	@echo "== import-linter"
	@for config in */.importlinter; do \
	  (cd "$$(dirname "$$config")" && ../$(VENV)/bin/lint-imports --no-cache .importlinter) || exit 1; \
	done

lint-delivery: ## hadolint (Dockerfiles), actionlint (CI workflows), shellcheck (scripts)
	@echo "== hadolint + actionlint + shellcheck"
	@$(VENV)/bin/hadolint $$(git ls-files --cached --others --exclude-standard '*Dockerfile' '*.Dockerfile')
	@"$$(hack/build-tools.sh --bin-dir actionlint)/actionlint" .github/workflows/*.yml
	@shellcheck -x -S warning .ci/run $$(git ls-files --cached --others --exclude-standard '*.sh')

test-python: ## pytest: test bed, operator, app and cross-cutting suites
	@echo "== pytest"
	@$(VENV)/bin/pytest --durations=20 $(PYTEST_ARGS)

# ---- benchmarks (figures, never pass/fail) --------------------------------------------------
.PHONY: bench
bench: setup ## Run every benchmark and print its figures
	@$(MAKE) $(BENCH_TARGETS)

MYPY_TARGETS := testbed/src tests app/tests app/bench
BENCH_TARGETS :=
EXTRA_TEST_TARGETS :=

-include mk/*.mk
