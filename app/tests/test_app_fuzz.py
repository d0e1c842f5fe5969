"""The API fuzzed over its own OpenAPI document, against the running app (uvicorn, real
PostgreSQL and Redis): Schemathesis's examples, coverage, fuzzing and stateful phases. Any 5xx,
or a response that does not match the document (status, content type, body), fails the run.

The seed is printed with the number of cases; ``ASSISTENTE_FUZZ_SEED=<seed>`` replays a run,
``ASSISTENTE_FUZZ_EXAMPLES`` sets the cases per operation (default 60). Local runs draw a new
seed each time, to keep exploring; CI (``CI`` set) uses a fixed one, so a merge is judged on the
same inputs as the run before it, and what a local run finds is fixed with a test of its own.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import sys
from pathlib import Path

import pytest
import uvicorn
from assistente_app.main import create_app

from .conftest import JwksIssuer, SettingsFactory, wait_for

HOOKS_DIR = Path(__file__).parent / "fuzz"
CI_SEED = 20261201
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_fuzz_the_api_over_its_openapi_document(
    make_settings: SettingsFactory,
    oidc: JwksIssuer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    settings = make_settings(
        rate_limit_per_minute=1_000_000,
        conversation_create_per_minute=1_000_000,
        oidc_issuer=oidc.served_issuer,  # the console's config.json reads its discovery
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, configure_logs=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws_per_message_deflate=False,
        )
    )
    serving = asyncio.create_task(server.serve())
    seed = int(
        os.environ.get("ASSISTENTE_FUZZ_SEED")
        or (CI_SEED if os.environ.get("CI") else random.randrange(2**31))
    )
    examples = os.environ.get("ASSISTENTE_FUZZ_EXAMPLES", "60")
    try:
        await wait_for(lambda: server.started)
        command = [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"http://127.0.0.1:{port}/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--seed",
            str(seed),
            "--max-examples",
            examples,
            # One worker: Hypothesis parses lambdas' source with ast, and CPython 3.11's parser
            # is not safe across threads ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
            "--no-color",
            "--generation-database",
            "none",
            "--suppress-health-check",
            "too_slow",
        ]
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
            "PYTHONPATH": str(HOOKS_DIR),
            "FUZZ_ADMIN_TOKEN": oidc.token(
                "fuzz-admin", ("admin", "agent"), expires_in=3600, issuer=oidc.served_issuer
            ),
            "FUZZ_TELEGRAM_SECRET": "segredo-telegram",
        }
        process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            cwd=tmp_path,  # st keeps state in ./.schemathesis: not in the repository
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=900)
    finally:
        server.should_exit = True
        await serving
    report = output.decode(errors="replace")
    cases = re.findall(r"(\d+) generated", report) or re.findall(r"(\d+) test cases", report)
    with capsys.disabled():
        count = cases[-1] if cases else "?"
        print(f"\nAPI fuzz: seed {seed}, {count} cases ({examples} per operation)")
    assert process.returncode == 0, report
