"""`make up`: the whole assistant on this machine, in the foreground, until Ctrl-C.

PostgreSQL and Redis keep their data under .local/ between runs; Rasa and its action server come
from Rasa's own venv with the model trained from rasa/ (cached by content hash); Keycloak (the
clerks' SSO) runs on a free port with the realm of testbed/keycloak/ and new demo passwords each
time; the API serves the widget at http://127.0.0.1:8000/ and the clerk console at
/atendimento/, and the worker links the queue to Rasa. The console's address and a demo clerk's
login are printed and written to .local/demo-clerk.json. Beside them, Prometheus (with the alert
rules) and Alertmanager watch the stack; with `logs=True` the logs are shipped to a local
VictoriaLogs too (see testbed/observability.py).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from assistente_testbed import observability
from assistente_testbed.app_processes import DEFAULT_WORKER_METRICS_PORT, AppProcesses
from assistente_testbed.fake_datajud import API_KEY as FAKE_DATAJUD_KEY
from assistente_testbed.fake_datajud import FakeDataJud, sample_cases
from assistente_testbed.keycloak import DEMO_CLERK, REALM, Clerk, KeycloakServer
from assistente_testbed.paths import state_dir
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import ServiceError, port_open
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisServer

API_PORT = 8000
RASA_PORT = 5005
ACTIONS_PORT = 5055
ACTIONS_METRICS_PORT = 9102
POSTGRES_PORT = 55432
REDIS_PORT = 56379
FAKE_DATAJUD_PORT = 5056
CONSOLE_URL = f"http://127.0.0.1:{API_PORT}/atendimento"


def _say(step: str) -> None:
    print(f"[make up] {step}", flush=True)


def write_demo_clerk(path: Path, url: str, clerk: Clerk) -> Path:
    """`.local/demo-clerk.json`: where to sign in and as whom (private: it holds a password)."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(
        json.dumps({"url": url, "username": clerk.username, "password": clerk.password}) + "\n"
    )
    return path


def _check_ports_free(ports: list[int]) -> None:
    busy = [p for p in ports if port_open(p)]
    if busy:
        raise ServiceError(
            f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 already in use: is another "
            "`make up` running? Stop it (Ctrl-C) or free the ports."
        )


def run_local_stack(*, metrics: bool = True, logs: bool = False) -> int:
    ports = [API_PORT, DEFAULT_WORKER_METRICS_PORT, RASA_PORT, ACTIONS_PORT, ACTIONS_METRICS_PORT,
             POSTGRES_PORT, REDIS_PORT]  # fmt: skip
    if metrics:
        ports += [observability.PROMETHEUS_PORT, observability.ALERTMANAGER_PORT]
    if logs:
        ports.append(observability.VICTORIALOGS_PORT)
    _check_ports_free(ports)
    state = state_dir()
    log_dir = state / "logs"
    cleanups: list[Callable[[], None]] = []

    def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # Explicit, because a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _say(f"PostgreSQL 15 on 127.0.0.1:{POSTGRES_PORT} (data in .local/postgres)")
        postgres = PostgresServer(state / "postgres", port=POSTGRES_PORT, fast=False)
        cleanups.append(postgres.stop)
        postgres.start()
        app_dsn = postgres.ensure_database("assistente")
        tracker_dsn = postgres.ensure_database("rasa_tracker")

        _say(f"Redis 7 on 127.0.0.1:{REDIS_PORT} (append-only file in .local/redis)")
        redis = RedisServer(state / "redis", port=REDIS_PORT)
        cleanups.append(redis.stop)
        redis.start()

        datajud_url = os.environ.get("DATAJUD_BASE_URL")
        datajud_key = os.environ.get("DATAJUD_API_KEY", "")
        if not datajud_key:
            fake = sample_cases(FakeDataJud()).start(port=FAKE_DATAJUD_PORT)
            cleanups.append(fake.stop)
            datajud_url, datajud_key = fake.url, FAKE_DATAJUD_KEY
            _say(f"DataJud: local simulator with sample cases at {fake.url} "
                 "(set DATAJUD_API_KEY to use the public API)")  # fmt: skip

        # Keycloak's JVM starts while Rasa loads: the two slowest starts overlap.
        keycloak = KeycloakServer(state / "keycloak", console_url=CONSOLE_URL)
        cleanups.append(keycloak.stop)
        _say(f"Keycloak (SSO for clerks) starting on {keycloak.url}, realm '{REALM}'...")
        keycloak.launch()

        _say("Rasa: venv, model (trained only when rasa/ changed), action server and server...")
        rasa = RasaStack(
            tracker_db_url=tracker_dsn,
            lock_redis_url=redis.url_for_db(1),
            datajud_base_url=datajud_url,
            datajud_api_key=datajud_key,
            log_dir=log_dir,
            port=RASA_PORT,
            actions_port=ACTIONS_PORT,
        )
        cleanups.append(rasa.stop)
        rasa.start()
        _say(f"Rasa on {rasa.url}, action server on {rasa.actions_url}")
        keycloak.wait_ready()
        _say(f"Keycloak on {keycloak.url} (log: {keycloak.log_path})")

        env = dict(
            os.environ,
            ASSISTENTE_DATABASE_URL=app_dsn,
            ASSISTENTE_REDIS_URL=redis.url_for_db(0),
            ASSISTENTE_RASA_URL=rasa.url,
            ASSISTENTE_PUBLIC_BASE_URL=f"http://127.0.0.1:{API_PORT}",
            **keycloak.api_env(),
        )
        # Locally the level-2 queue is open around the clock, so an escalation shows the queue
        # position at any hour; the deployed default is weekdays 08:00-18:00 (Brasília).
        for key, value in (("ASSISTENTE_SERVICE_DAYS", "mon,tue,wed,thu,fri,sat,sun"),
                           ("ASSISTENTE_SERVICE_OPEN", "00:00"),
                           ("ASSISTENTE_SERVICE_CLOSE", "23:59:59.999999")):  # fmt: skip
            env.setdefault(key, value)
        _say("database migrations, then the worker and the API")
        app = AppProcesses(port=API_PORT, env=env, log_dir=log_dir)
        cleanups.append(app.stop)
        app.start()
        watch: dict[str, str] = {}
        if metrics:
            extra = " + VictoriaLogs and the log shipper" if logs else ""
            _say(f"Prometheus + Alertmanager{extra} on 127.0.0.1")
            watch = observability.start(
                state,
                targets={
                    "api": f"127.0.0.1:{API_PORT}",
                    "worker": app.worker_metrics_address,
                    "actions": rasa.actions_metrics_address,
                },
                redis=redis,
                log_globs=[f"{log_dir}/*.log"] if logs else None,
                on_cleanup=cleanups.append,
            )
        clerk = keycloak.clerk(DEMO_CLERK)
        demo_file = write_demo_clerk(state / "demo-clerk.json", CONSOLE_URL + "/", clerk)
        others = ", ".join(c.username for c in keycloak.clerks.values() if c is not clerk)
        print(
            f"\n  Assistente Digital pronto: abra http://127.0.0.1:{API_PORT}/\n"
            f"  Console dos atendentes: {CONSOLE_URL}/\n"
            f"    usuário: {clerk.username}   senha: {clerk.password}   (em {demo_file})\n"
            f"    outros atendentes de demonstração: {others}\n"
            f"    (senhas em {keycloak.base_dir / 'credentials.json'}, novas a cada `make up`)\n"
            f"  API docs: http://127.0.0.1:{API_PORT}/docs   logs: {log_dir}\n"
            + "".join(f"  {name}: {url}\n" for name, url in watch.items())
            + "  Ctrl-C para encerrar.\n",
            flush=True,
        )
        while True:
            app.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        _say("stopping...")
        return 0
    finally:
        for cleanup in reversed(cleanups):
            cleanup()
