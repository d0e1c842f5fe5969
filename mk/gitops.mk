# argocd/, overlays/, platform/: the GitOps path. Included by the root Makefile (-include mk/*.mk).

.PHONY: gitops-tools gitops-up gitops-down gitops-test

# Argo CD is built on demand (like the real node's tools), before the suites that need it, so the
# first build's progress shows instead of disappearing into a test's captured output.
test-python: gitops-tools

gitops-tools: ## gitops: build Argo CD from its Go module (first time ~7 min on 2 cores; cached)
	@hack/build-tools.sh argocd

gitops-up: setup gitops-tools ## gitops: Argo CD on 127.0.0.1 syncing this checkout's committed HEAD into make cluster (kwok nodes)
	@$(TESTBED) gitops up

gitops-down: ## gitops: stop Argo CD and everything it started (the cluster keeps running)
	@$(TESTBED) gitops down

gitops-test: gitops-tools ## gitops: manifest checks and the real Argo CD loop (tests/gitops)
	@$(VENV)/bin/pytest tests/gitops -q
