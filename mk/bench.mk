# bench/: benchmarks across components (the whole citizen turn). Included by the root Makefile.

MYPY_TARGETS += bench
BENCH_TARGETS += bench-e2e

.PHONY: bench-e2e profile-turn

bench-e2e: ## bench: citizens on WebSockets: idle turn per intent, sweep to the knee, failover counts
	@echo "== bench: end to end (API + worker + Rasa + actions + PostgreSQL + Redis, all local)"
	@$(PY) bench/bench_e2e.py --failovers --json .local/bench-e2e.json

profile-turn: ## bench: timeline of idle turns across processes (Redis MONITOR, PostgreSQL log, py-spy)
	@$(PY) bench/profile_turn.py --turns 30 --py-spy
