"""``callcenter run``: the service — AMI ingestion, PostgreSQL and the HTTP server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import structlog

from callcenter.app import Service
from callcenter.config import Settings, load_settings
from callcenter.logs import configure_logging

log = structlog.get_logger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument("--http-port", type=int, help="HTTP port (default from settings)")


async def run_service(settings: Settings, stop: asyncio.Event) -> None:
    """Runs the service until ``stop`` is set, then shuts it down cleanly."""
    from callcenter.web.server import default_features, make_app, serve

    service = Service(settings)
    await service.start()
    runner = await serve(
        make_app(service, default_features()), settings.http_host, settings.http_port
    )
    log.info("service_started", http=f"http://{settings.http_host}:{settings.http_port}")
    try:
        await stop.wait()
    finally:
        log.info("service_stopping")
        await runner.cleanup()
        await service.stop()


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


def main(args: argparse.Namespace) -> int:
    """Starts the service with the configured settings; exits 2 on a configuration error."""
    settings = load_settings(args.config)  # a ConfigError exits 2 in __main__
    if args.http_port:
        from dataclasses import replace

        settings = replace(settings, http_port=args.http_port)
    configure_logging(settings.log_format, settings.log_level, settings.mask_numbers)

    async def go() -> None:
        stop = asyncio.Event()
        _install_signal_handlers(stop)
        await run_service(settings, stop)

    try:
        asyncio.run(go())
    except Exception as exc:  # a start-up failure: say what, not a traceback wall
        log.error("service_failed", error=str(exc), error_type=type(exc).__name__)
        return 1
    return 0
