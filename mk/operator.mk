# operator/: the kopf operator for the AssistenteDigital custom resource.
# Included by the root Makefile (-include mk/*.mk).

MYPY_TARGETS += operator/src operator/tests operator/bench
BENCH_TARGETS += operator-bench

OPERATOR := $(VENV)/bin/assistente-operator
KUSTOMIZE = "$$(hack/build-tools.sh --bin-dir kustomize)/kustomize"

.PHONY: operator-test operator-test-unit operator-bench operator-run operator-crd operator-check-crd operator-rbac operator-render operator-manifests

operator-test: ## operator: unit, golden and end-to-end tests (starts the local control plane)
	@$(VENV)/bin/pytest operator/tests -q

operator-test-unit: ## operator: unit and golden tests only (no cluster)
	@$(VENV)/bin/pytest operator/tests -q -m "not cluster"

operator-bench: ## operator: create->Ready latency, 100 CRs convergence, reconciles/s, RSS
	@echo "== bench: operator"
	@$(PY) operator/bench/bench_operator.py --count 100

operator-run: ## operator: run against the cluster in $$KUBECONFIG (default .local/kubeconfig)
	@KUBECONFIG=$${KUBECONFIG:-$(CURDIR)/.local/kubeconfig} $(OPERATOR) run

operator-crd: ## operator: regenerate the CRD from the pydantic models
	@$(OPERATOR) crd > operator/config/crd/bases/assistente.digital_assistentesdigitais.yaml

operator-check-crd: ## operator: fail if the committed CRD differs from the models
	@$(OPERATOR) crd | diff -u operator/config/crd/bases/assistente.digital_assistentesdigitais.yaml -

operator-rbac: ## operator: regenerate the ClusterRole and the namespaced Role from the kinds registry
	@$(OPERATOR) rbac > operator/config/rbac/role.yaml
	@$(OPERATOR) rbac --namespaced > operator/config/components/namespaced/role.yaml

operator-render: ## operator: print the children of the sample CR (like helm template)
	@$(OPERATOR) render operator/config/samples/assistentedigital.yaml

operator-manifests: ## operator: kustomize build of the install base and every cloud overlay
	@for dir in operator/config/default operator/config/namespaced overlays/aws overlays/azure overlays/gcp overlays/onprem; do \
	  echo "== kustomize build $$dir"; $(KUSTOMIZE) build $$dir > /dev/null; done

.PHONY: operator-monitoring
operator-monitoring: ## operator: regenerate operator/config/prometheus from monitoring/ (rules, dashboard)
	@$(VENV)/bin/assistente-monitoring operator-base --out operator/config/prometheus
