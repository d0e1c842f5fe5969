module assistente-digital.invalid/tools/crds

go 1.25.0

require (
	github.com/argoproj/argo-cd/v3 v3.2.0
	github.com/cloudnative-pg/cloudnative-pg v1.28.0
	github.com/external-secrets/external-secrets v1.3.2
	github.com/prometheus-operator/prometheus-operator v0.85.0
)
