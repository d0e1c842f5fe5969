# rasa/: the Portuguese assistant. Included by the root Makefile (-include mk/*.mk).
# Everything runs from Rasa's own venv (hack/rasa-setup.sh, cached by the lock file's hash).

RASA_VENV = $(shell hack/rasa-setup.sh --path)
RASA_PY = $(RASA_VENV)/bin/python
BENCH_TARGETS += rasa-bench
EXTRA_TEST_TARGETS += rasa-lint rasa-quality

.PHONY: rasa-setup rasa-train rasa-quality rasa-lint rasa-actions rasa-server \
        rasa-fake-datajud rasa-bench

rasa-setup: ## rasa: build Rasa's venv (first run ~5 min, then cached)
	@hack/rasa-setup.sh >/dev/null

rasa-train: rasa-setup ## rasa: train the model if config/domain/data changed (prints its path)
	@hack/rasa-train.sh

rasa-quality: rasa-setup ## rasa: data validate, held-out NLU F1, test stories, actions unit tests
	@echo "== rasa quality gates"
	@hack/rasa-quality.sh

rasa-lint: rasa-setup ## rasa: mypy --strict with Rasa's interpreter (ruff covers rasa/ from the root)
	@echo "== mypy --strict (rasa)"
	@cd rasa && ../$(VENV)/bin/mypy --config-file mypy.ini --python-executable $(RASA_PY) \
		actions components rasa_sdk_plugins serving stores scripts bench tests

rasa-actions: rasa-setup ## rasa: run the action server on 127.0.0.1:5055
	@hack/rasa-run.sh actions

rasa-server: rasa-setup ## rasa: run the Rasa server on 127.0.0.1:5005 (RASA_TRACKER_DB_URL, RASA_LOCK_REDIS_URL)
	@hack/rasa-run.sh server

rasa-fake-datajud: ## rasa: local DataJud simulator with two sample cases on 127.0.0.1:5056
	@$(PY) -m assistente_testbed.fake_datajud --port 5056

rasa-bench: rasa-setup ## rasa: NLU parse p50/p99, parses/s, full turn latency, ratio vs the default pipeline
	@echo "== bench: rasa"
	@$(RASA_PY) rasa/bench/bench_nlu.py --seconds 10 --compare-default --json .local/rasa-bench.json
