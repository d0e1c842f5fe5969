"""Console scripts: ``assistente-api`` and ``assistente-worker``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import uvloop
from pydantic import ValidationError

from assistente_app.core.logging import configure_logging
from assistente_app.settings import Settings, get_settings


def load_settings() -> Settings:
    """The settings, or exit 2 with what is wrong in them (no traceback to read through)."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "\n".join(
            f"  - {'.'.join(str(p) for p in error['loc']) or 'configuração'}: {error['msg']}"
            for error in exc.errors()
        )
        print(f"Configuração inválida; o processo não vai iniciar:\n{problems}", file=sys.stderr)
        raise SystemExit(2) from None


def api(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="assistente-api", description="Assistente Digital API")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the HTTP API (default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="proxies trusted for X-Forwarded-For (the ingress), used by per-IP rate limits: "
        "comma-separated addresses or CIDRs, '*' for any (default: ASSISTENTE_TRUSTED_PROXIES)",
    )
    sub.add_parser("migrate", help="apply database migrations (Alembic) and exit")
    args = parser.parse_args(argv)
    if getattr(args, "forwarded_allow_ips", None):
        # The app, not uvicorn, reads X-Forwarded-For (ClientAddressMiddleware); the flag feeds
        # the same setting, also for the worker processes uvicorn starts.
        trusted = args.forwarded_allow_ips.replace("*", "0.0.0.0/0,::/0")
        os.environ["ASSISTENTE_TRUSTED_PROXIES"] = trusted
        get_settings.cache_clear()
    settings = load_settings()
    configure_logging(settings.log_level)
    if args.command == "migrate":
        from assistente_app.core.migrate import upgrade

        print("Aplicando migrações do banco de dados...", file=sys.stderr)
        upgrade(settings.database_url)
        print("Migrações aplicadas.", file=sys.stderr)
        return
    import uvicorn

    uvicorn.run(
        "assistente_app.main:create_app",
        factory=True,
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", 8000),
        workers=getattr(args, "workers", 1),
        log_config=None,
        access_log=False,
        ws_per_message_deflate=False,  # 14 KiB instead of ~64 KiB per idle socket
        # Clients only send a token and pings: uvicorn's default 16 MiB frames are not needed.
        ws_max_size=settings.ws_max_frame_bytes,
        proxy_headers=False,
    )


def worker(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="assistente-worker", description="Assistente worker")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="consume the queues (default)")
    sub.add_parser("retention", help="apply the LGPD retention policy once and exit")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level)
    if args.command == "retention":
        from assistente_app.worker.runner import build_context, close_context, retention_once

        async def _once() -> None:
            ctx = build_context(settings)
            try:
                await ctx.redis.delete(f"{settings.queue_prefix}:retention-lock")
                print(f"Conversas removidas: {await retention_once(ctx)}")
            finally:
                await close_context(ctx)

        asyncio.run(_once())
        return
    from assistente_app.worker.runner import run_worker, start_metrics_server

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    start_metrics_server(settings)
    # uvloop, as uvicorn runs the API: about half the event loop's CPU per socket operation.
    uvloop.run(_main())
