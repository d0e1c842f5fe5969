# argocd/, overlays/, platform/: the GitOps path. Included by the root Makefile (-include mk/*.mk).

.PHONY: gitops-up gitops-down gitops-test

gitops-up: setup ## gitops: Argo CD on 127.0.0.1 syncing this checkout's committed HEAD into `make cluster`
	@$(TESTBED) gitops up

gitops-down: ## gitops: stop Argo CD and everything it started (the cluster keeps running)
	@$(TESTBED) gitops down

gitops-test: ## gitops: manifest checks and the real Argo CD loop (tests/gitops)
	@$(VENV)/bin/pytest tests/gitops -q
