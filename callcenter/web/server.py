"""The aiohttp application: an app factory that feature modules add their routes to.

Each feature (metrics, wallboard, agent pages, API) is a module with a ``setup(app)``
function; they find the running service under ``SERVICE``.

Every response carries the security headers (``SECURITY_HEADERS``: a strict
Content-Security-Policy, no framing, no referrer, no sniffing). The server closes a connection
that has not sent a complete request head within ``http_header_timeout`` seconds (a silent or
slow-drip client) or that idles that long after its last answer, and answers 503 and closes
beyond ``http_max_connections`` connections (docs/security.md).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from callcenter.app import Service
from callcenter.web import pop_page

SERVICE = web.AppKey("service", Service)

Feature = Callable[[web.Application], None]


def _style_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Scripts and styles only from files this service serves (no inline code, no other site), the
# pop page's one inline style by its hash; WebSockets to this origin; never inside a frame.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        f"style-src 'self' {_style_hash(pop_page.STYLE)}",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    # Page URLs may carry ?token= (a TV's wallboard): never sent on to another site.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Adds the security headers to every response (pages, API, errors, WebSocket upgrades)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def healthz(request: web.Request) -> web.Response:
    """Reports AMI links, database reachability and backlog; 503 when degraded."""
    report = request.app[SERVICE].health()
    return web.json_response(report, status=503 if report["status"] == "degraded" else 200)


def make_app(service: Service, features: list[Feature] | None = None) -> web.Application:
    """Builds the web application for a service with the given feature modules."""
    app = web.Application()
    app[SERVICE] = service
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/healthz", healthz)
    for feature in features or []:
        feature(app)
    return app


def default_features() -> list[Feature]:
    """The feature modules the service serves by default (those that are installed)."""
    features: list[Feature] = []
    for name in (
        "callcenter.metrics.http",
        "callcenter.web.wallboard",
        "callcenter.web.agent",
        "callcenter.web.api",
        "callcenter.web.reports",
    ):
        try:
            module = __import__(name, fromlist=["setup"])
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        features.append(module.setup)
    return features


class _Refuse(asyncio.Protocol):
    """Answers 503 and closes: the connection limit is reached."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
            b"Retry-After: 1\r\nConnection: close\r\n\r\n"
        )
        transport.close()


class LimitedSite(web.TCPSite):
    """A TCP site that serves at most ``max_connections`` connections at once."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, max_connections: int) -> None:
        super().__init__(runner, host, port)
        self.max_connections = max(1, max_connections)
        self.refused = 0

    async def start(self) -> None:
        """Listens; each accepted connection over the limit gets a 503 and is closed."""
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None

        def protocol() -> asyncio.BaseProtocol:
            if len(server.connections) >= self.max_connections:
                self.refused += 1
                return _Refuse()
            return server()

        self._server = await asyncio.get_running_loop().create_server(
            protocol, self._host, self._port, backlog=self._backlog, reuse_address=True
        )


def runner_options(settings: Any) -> dict[str, Any]:
    """aiohttp server options from the settings: the header and idle timeout."""
    # aiohttp closes a connection that has no complete request within keepalive_timeout of
    # connecting (a silent or slow-drip client) or of its last answer (an idle keep-alive).
    return {"access_log": None, "keepalive_timeout": float(settings.http_header_timeout)}


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Starts serving the app with timeouts and a connection limit; returns the runner."""
    settings = app[SERVICE].settings
    runner = web.AppRunner(app, **runner_options(settings))
    await runner.setup()
    site = LimitedSite(runner, host, port, settings.http_max_connections)
    await site.start()
    return runner
