# monitoring/: alert rules, the Alertmanager configuration, dashboards as code and log shipping.
# Included by the root Makefile (-include mk/*.mk). Their tests run in `make test` (pytest).

MYPY_TARGETS += monitoring/src monitoring/tests
RULES_DIR := monitoring/src/assistente_monitoring/rules

.PHONY: monitoring-test monitoring-check monitoring-dashboards

monitoring-test: ## monitoring: rules, Alertmanager, dashboards, names and log shipping tests
	@$(VENV)/bin/pytest monitoring/tests -q

monitoring-check: ## monitoring: promtool check/test rules and amtool check-config, nothing else
	@promtool check rules $(RULES_DIR)/*.rules.yml
	@cd monitoring/tests/rules && promtool test rules *.test.yml
	@amtool check-config monitoring/alertmanager/alertmanager.yml

monitoring-dashboards: ## monitoring: write the dashboards as Grafana JSON into .local/dashboards/
	@$(VENV)/bin/assistente-monitoring dashboards --out .local/dashboards
