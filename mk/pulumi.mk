# pulumi/: the Pulumi programs (AWS, Azure, Google Cloud, on-prem) and their tests.
# Included by the root Makefile (-include mk/*.mk). pulumi/ keeps its own locked virtualenv
# (pulumi/.venv): the cloud SDKs are large and no other suite needs them.

PULUMI_VENV := pulumi/.venv
PULUMI_CLI := $(PULUMI_VENV)/bin/assistente-pulumi
STACK ?= onprem
# The program renders overlays with the kustomize the test bed builds.
PULUMI_ENV = KUSTOMIZE="$$(hack/build-tools.sh --bin-dir kustomize)/kustomize"
# STACK=onprem runs against the local test cluster (make cluster) with pulumi/local/onprem.yaml.
PULUMI_TARGET = --stack $(STACK) $(if $(filter onprem,$(STACK)),--local-cluster)

EXTRA_TEST_TARGETS += pulumi-test

.PHONY: pulumi-setup pulumi-test pulumi-test-unit pulumi-typecheck pulumi-preview pulumi-up pulumi-destroy

pulumi-setup: ## pulumi: sync pulumi/.venv from pulumi/uv.lock
	@hack/setup.sh pulumi
	@hack/build-tools.sh kustomize

pulumi-test: pulumi-setup ## pulumi: mypy, mock tests of the four stacks, real onprem up/update/destroy
	@echo "== pulumi: mypy --strict"
	@cd pulumi && .venv/bin/mypy src tests
	@echo "== pulumi: tests (builds the Pulumi CLI and Kubernetes provider the first time)"
	@$(PULUMI_ENV) $(PULUMI_VENV)/bin/pytest pulumi/tests -q $(PYTEST_ARGS)

pulumi-test-unit: pulumi-setup ## pulumi: mock tests only (no cluster, no Go build)
	@$(PULUMI_ENV) $(PULUMI_VENV)/bin/pytest pulumi/tests -q -m "not cluster"

pulumi-typecheck: pulumi-setup ## pulumi: mypy --strict on pulumi/ (the cloud SDKs' classes count as Any)
	@cd pulumi && .venv/bin/mypy src tests

pulumi-preview: pulumi-setup ## pulumi: preview STACK (default onprem, on the local cluster)
	@$(PULUMI_ENV) $(PULUMI_CLI) preview $(PULUMI_TARGET)

pulumi-up: pulumi-setup ## pulumi: up STACK (onprem: local cluster from `make cluster`; waits for Ready)
	@$(PULUMI_ENV) $(PULUMI_CLI) up $(PULUMI_TARGET)

pulumi-destroy: pulumi-setup ## pulumi: destroy STACK, removing everything its up made
	@$(PULUMI_ENV) $(PULUMI_CLI) destroy $(PULUMI_TARGET)
