"""The aiohttp application: an app factory that feature modules add their routes to.

Each feature (metrics, wallboard, agent pages, API) is a module with a ``setup(app)``
function; they find the running service under ``SERVICE``.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from callcenter.app import Service

SERVICE = web.AppKey("service", Service)

Feature = Callable[[web.Application], None]


async def healthz(request: web.Request) -> web.Response:
    """Reports AMI links, database reachability and backlog; 503 when degraded."""
    report = request.app[SERVICE].health()
    return web.json_response(report, status=200 if report["status"] == "ok" else 503)


def make_app(service: Service, features: list[Feature] | None = None) -> web.Application:
    """Builds the web application for a service with the given feature modules."""
    app = web.Application()
    app[SERVICE] = service
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


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Starts serving the app; returns the runner to clean up with."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
