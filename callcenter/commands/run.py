"""``callcenter run``: the service — AMI ingestion, PostgreSQL and the HTTP server.

The life cycle, in an order that never leaves a half-started process behind:

1. every setting is checked (``load_settings``, then the web features, the IVR menu and the
   retention settings) before anything connects;
2. the HTTP and FastAGI sockets are bound, so a port in use fails before the AMI login (which
   would resume open calls and start answering IVR calls);
3. the service starts (PostgreSQL, open calls, AMI); a SIGTERM or SIGINT meanwhile cancels it;
4. any start failure stops what was started and exits 1 with one ``callcenter: …`` line;
5. SIGTERM or SIGINT drains and stops within ``_STOP_S`` seconds; a second signal, or a stop
   that overruns its budget, ends the process at once (exit 1) rather than hanging.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
from typing import Any

import structlog

from callcenter.app import Service
from callcenter.config import ConfigError, Settings, load_settings
from callcenter.logs import configure_logging

log = structlog.get_logger(__name__)

# Budget of a requested stop: the service's own steps are bounded well below it; the hard
# watchdog (a thread, so a blocked event loop cannot delay it) ends the process after it.
_STOP_S = 8.0
_HARD_STOP_S = 9.5


class StartError(Exception):
    """The service could not start; the message is the one line the operator sees."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument("--http-port", type=int, help="HTTP port (default from settings)")


def bind(host: str, port: int, what: str) -> socket.socket:
    """Binds and listens on a TCP socket now, so a port in use fails before anything connects."""
    try:
        sock = socket.create_server((host, port), backlog=128)
    except OSError as exc:
        # create_server's own message repeats the address; the errno's text is the reason.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StartError(f"cannot listen for {what} on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock


def preflight(settings: Settings) -> None:
    """Checks the settings that are read only at start-up (IVR menu, retention); ConfigError."""
    from callcenter.categories import categories
    from callcenter.retention import check

    try:
        check(settings.retention_days, settings.retention_mode)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if settings.fastagi_enabled:
        from callcenter.ivr.menu import load_menu

        codes = [c.code for c in categories(settings)]
        try:
            load_menu(settings.ivr_menu or None, known_categories=codes)
        except ConfigError:
            raise
        except (OSError, ValueError) as exc:
            raise ConfigError(f"IVR menu: {exc}") from None


async def run_service(settings: Settings, stop: asyncio.Event) -> None:
    """Runs the service until ``stop`` is set, then shuts it down cleanly.

    Raises ConfigError for a bad setting and StartError (or the failing exception) when the
    service cannot start; what was started is stopped first, within ``_STOP_S``.
    """
    from aiohttp import web

    from callcenter.web.server import default_features, make_app

    service = Service(settings)
    app = make_app(service, default_features())  # the features validate their settings
    preflight(settings)
    sockets: list[socket.socket] = []
    runner: Any = None
    try:
        http_sock = bind(settings.http_host, settings.http_port, "HTTP")
        sockets.append(http_sock)
        agi_sock = None
        if settings.fastagi_enabled:
            agi_sock = bind(settings.fastagi_host, settings.fastagi_port, "FastAGI")
            sockets.append(agi_sock)
        await _start_or_stop(service, stop, agi_sock)
        if stop.is_set():
            return
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, http_sock).start()
        host, port = http_sock.getsockname()[:2]
        log.info("service_started", http=f"http://{host}:{port}")
        await stop.wait()
        log.info("service_stopping")
    finally:
        await _shutdown(service, runner)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


async def _start_or_stop(service: Service, stop: asyncio.Event, agi_sock: Any) -> None:
    """Starts the service, or cancels the start when a stop is requested meanwhile."""
    starting = asyncio.create_task(service.start(fastagi_sock=agi_sock), name="start")
    stopping = asyncio.create_task(stop.wait(), name="stop-requested")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not starting.done():
            starting.cancel()
            await asyncio.wait([starting])
    if starting.cancelled():
        log.info("service_start_cancelled")
        return
    exc = starting.exception()
    if exc is not None:
        raise exc


async def _shutdown(service: Service, runner: Any) -> None:
    """Stops the HTTP server and the service within ``_STOP_S`` seconds."""
    try:
        async with asyncio.timeout(_STOP_S):
            if runner is not None:
                await runner.cleanup()
            await service.stop()
    except TimeoutError:
        log.error("service_stop_timeout", seconds=_STOP_S)
    except Exception as exc:  # a failing stop step must not hide the reason we stopped
        log.error("service_stop_failed", error=repr(exc))


def _install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM/SIGINT set ``stop``; a second one ends the process at once."""
    loop = asyncio.get_running_loop()

    def requested(sig: signal.Signals) -> None:
        if stop.is_set():
            _die(f"second {sig.name}: stopping now without draining")
        log.info("stop_requested", signal=sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, requested, sig)


def _die(message: str) -> None:
    """Ends the process now with one line (used when stopping cleanly is not possible)."""
    sys.stderr.write(f"callcenter: {message}\n")
    sys.stderr.flush()
    os._exit(1)


def _arm_hard_stop() -> None:
    """Ends the process if the clean stop overruns its budget (a last resort, not the path)."""
    timer = threading.Timer(
        _HARD_STOP_S, _die, (f"stop took longer than {_HARD_STOP_S:g} s: exiting",)
    )
    timer.daemon = True
    timer.start()


def main(args: argparse.Namespace) -> int:
    """Starts the service; exits 2 on a bad setting, 1 when it cannot start, 0 once stopped."""
    settings = load_settings(args.config)  # a ConfigError exits 2 in __main__
    if args.http_port:
        from dataclasses import replace

        settings = replace(settings, http_port=args.http_port)
    configure_logging(settings.log_format, settings.log_level, settings.mask_numbers)

    async def go() -> None:
        stop = asyncio.Event()
        _install_signal_handlers(stop)
        try:
            await run_service(settings, stop)
        finally:
            # Whatever ends the service, asyncio.run's own clean-up must not hang the exit.
            _arm_hard_stop()

    try:
        asyncio.run(go())
    except ConfigError:
        raise  # exit 2 with its one line, in __main__
    except Exception as exc:  # a start-up failure: one line, not a traceback wall
        message = str(exc) or type(exc).__name__
        log.error("service_failed", error=message, error_type=type(exc).__name__)
        print(f"callcenter: cannot start: {message}", file=sys.stderr)
        return 1
    log.info("service_stopped")
    return 0
