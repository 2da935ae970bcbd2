"""Serves ``/metrics`` in the Prometheus text format for the running service."""

from __future__ import annotations

import time

from aiohttp import web

from callcenter.metrics.exporter import CONTENT_TYPE, Exporter, attach
from callcenter.web.server import SERVICE

EXPORTER = web.AppKey("metrics_exporter", Exporter)


async def metrics(request: web.Request) -> web.Response:
    """Renders every metric; live gauges are computed now, from the tracker."""
    body = request.app[EXPORTER].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def setup(app: web.Application) -> None:
    """Subscribes the metrics to the app's service and adds the ``/metrics`` route."""
    # Waits on the floor's clock; lag on the wall clock the AMI adapter stamps receipts with.
    exporter = attach(app[SERVICE], app[SERVICE].clock, lag_clock=time.time)
    app[EXPORTER] = exporter
    app.router.add_get("/metrics", metrics)
    app.on_startup.append(_ivr_metrics)


async def _ivr_metrics(app: web.Application) -> None:
    """Adds the IVR's counters once the service runs (``run`` builds the app before start)."""
    ivr = getattr(app[SERVICE], "ivr", None)
    if ivr is not None:
        from callcenter.ivr.stats import IvrCollector

        app[EXPORTER].registry.register(IvrCollector(ivr.stats))
