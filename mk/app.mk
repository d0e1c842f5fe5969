# app/: FastAPI service + worker. Included by the root Makefile (-include mk/*.mk).
# The targets below expect ASSISTENTE_DATABASE_URL / ASSISTENTE_REDIS_URL / ASSISTENTE_RASA_URL
# in the environment (`make up` sets them for the services it starts).

MYPY_TARGETS += app/src contract/src
BENCH_TARGETS += bench-app

.PHONY: app-migrate app-api app-worker test-app bench-app

app-migrate: ## app: apply the database migrations (Alembic, shipped in the package)
	@$(VENV)/bin/assistente-api migrate

app-api: app-migrate ## app: serve the API + widget on http://127.0.0.1:8000/
	@$(VENV)/bin/assistente-api serve --host 127.0.0.1 --port 8000

app-worker: ## app: run the queue worker (calls Rasa at $$ASSISTENTE_RASA_URL)
	@$(VENV)/bin/assistente-worker run

test-app: ## app: the app suite only (real PostgreSQL + Redis)
	@$(VENV)/bin/pytest app/tests -q

bench-app: ## app: POST /messages throughput + latency, idle WebSockets per GiB
	@echo "== bench: app"
	@$(PY) app/bench/bench_app.py --seconds 15 --concurrency 32 --sockets 2000
