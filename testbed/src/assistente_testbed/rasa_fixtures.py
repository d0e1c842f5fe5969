"""Session fixtures for the real Rasa stack (register in the pytest plugin, or import them).

`rasa_stack` runs the Rasa server + action server from Rasa's own venv, with the tracker store
on the session's PostgreSQL (database ``rasa_tracker``) and the lock store on its Redis (db 1,
apart from the app's db 0). The action server talks to `fake_datajud`, a local HTTP fake of the
CNJ DataJud API with `sample_cases`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistente_testbed.fake_datajud import API_KEY, FakeDataJud, sample_cases
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisServer

RASA_TRACKER_DATABASE = "rasa_tracker"
RASA_LOCK_REDIS_DB = 1


@pytest.fixture(scope="session")
def fake_datajud() -> Iterator[FakeDataJud]:
    fake = sample_cases(FakeDataJud()).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def rasa_stack(
    postgres_server: PostgresServer, redis_server: RedisServer, fake_datajud: FakeDataJud
) -> Iterator[RasaStack]:
    stack = RasaStack(
        tracker_db_url=postgres_server.create_database(RASA_TRACKER_DATABASE),
        lock_redis_url=redis_server.url_for_db(RASA_LOCK_REDIS_DB),
        datajud_base_url=fake_datajud.url,
        datajud_api_key=API_KEY,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
