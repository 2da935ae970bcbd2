"""Reports over HTTP: ``/api/reports`` (JSON or CSV, supervisor role) and the ``/reports`` page.

The API takes the CLI's options as query parameters: ``from``, ``to`` (local dates, both
included), ``queue``, ``by`` (day, hour, month, queue, agent), ``format`` (json or csv) and
``top``. The page is static; it calls the API with the token the supervisor gives it.
A background task folds new ticket attachments into the request rollups every minute, so
the figures stay current between reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from aiohttp import web

from callcenter.categories import categories
from callcenter.kpis import GROUPINGS, Thresholds
from callcenter.report_format import to_csv, to_dict
from callcenter.reports import ReportError, ReportQuery, build_report, fold_requests
from callcenter.web.auth import json_error, require
from callcenter.web.server import SERVICE

log = structlog.get_logger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
ROLES = ("supervisor", "admin")
# A report must not hold a connection forever; a year's report takes well under this.
REPORT_TIMEOUT_S = 120.0
FOLD_EVERY_S = 60.0


def _date(request: web.Request, name: str, default: date | None = None) -> date:
    """A date query parameter, or a 400 naming it."""
    raw = request.query.get(name)
    if not raw:
        if default is not None:
            return default
        raise json_error(400, "bad_request", f"the '{name}' date is required (YYYY-MM-DD)")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise json_error(
            400, "bad_request", f"'{name}' is not a date (YYYY-MM-DD): {raw}"
        ) from None


def query_of(request: web.Request, tz: str) -> ReportQuery:
    """The report a request asks for; 400 for anything malformed."""
    start = _date(request, "from")
    end = _date(request, "to", start)
    by = request.query.get("by") or None
    if by is not None and by not in GROUPINGS:
        raise json_error(400, "bad_request", f"'by' must be one of {', '.join(GROUPINGS)}")
    try:
        top = int(request.query.get("top", "10"))
    except ValueError:
        raise json_error(400, "bad_request", "'top' must be a number") from None
    if (end - start).days > 3660:
        raise json_error(400, "bad_request", "a report covers at most ten years")
    try:
        return ReportQuery(start, end, request.query.get("queue") or None, by, tz, max(1, top))
    except ReportError as exc:
        raise json_error(400, "bad_request", str(exc)) from None


async def report_api(request: web.Request) -> web.StreamResponse:
    """The period's report as one JSON object, or as a CSV download."""
    await require(request, *ROLES)
    service = request.app[SERVICE]
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise json_error(400, "bad_request", "'format' must be json or csv")
    query = query_of(request, service.settings.timezone)
    if service.pool is None:
        raise json_error(503, "unavailable", "the database is not connected yet")
    try:
        report = await asyncio.wait_for(
            build_report(
                service.pool,
                query,
                Thresholds.from_settings(service.settings),
                now=_clock_of(service)(),
            ),
            REPORT_TIMEOUT_S,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        log.error("report failed", error=repr(exc))
        raise json_error(
            503, "unavailable", "the report could not be read from the database"
        ) from exc
    if fmt == "csv":
        name = f"rapor_{query.start}_{query.end}" + (f"_{query.by}" if query.by else "")
        return web.Response(
            text=to_csv(report),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    body = to_dict(report)
    names = {c.code: c for c in categories(service.settings)}
    for entry in body["top_categories"]:
        # The floor reads names, not codes; an unknown (retired) code is shown as it is.
        known = names.get(entry["category"])
        entry["name"] = known.tr if known else entry["category"]
        entry["name_en"] = known.en if known else entry["category"]
    return web.json_response(body, dumps=_dumps)


def _clock_of(service: Any) -> Callable[[], float]:
    return getattr(service, "clock", time.time)


async def clock_api(request: web.Request) -> web.Response:
    """The floor's clock: now, today's local date and the time zone (pages default to it)."""
    service = request.app[SERVICE]
    now = _clock_of(service)()
    tz = service.settings.timezone
    return web.json_response(
        {
            "now": now,
            "today": datetime.fromtimestamp(now, ZoneInfo(tz)).date().isoformat(),
            "timezone": tz,
            "rate": getattr(service, "clock_rate", 1.0),
        }
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _static(name: str, content_type: str) -> Callable[[web.Request], Any]:
    path = STATIC / name

    async def serve(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Content-Type": content_type})

    return serve


async def _fold_forever(app: web.Application) -> None:
    """Folds ticket attachments into the request rollups now and then (errors are logged)."""
    while True:
        await asyncio.sleep(FOLD_EVERY_S)
        pool = app[SERVICE].pool
        if pool is None:
            continue
        try:
            async with pool.acquire(timeout=10) as conn:
                await asyncio.wait_for(fold_requests(conn), REPORT_TIMEOUT_S)
        except Exception as exc:  # a missing table or a lost database must not stop the loop
            log.warning("request fold failed", error=repr(exc))


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_fold_forever(app), name="report-fold")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    """Adds the report API, the report page and its assets."""
    from callcenter.web.assets import add_shared

    add_shared(app)
    app.router.add_get("/api/reports", report_api)
    app.router.add_get("/api/clock", clock_api)
    app.router.add_get("/reports", _static("reports.html", "text/html; charset=utf-8"))
    app.router.add_get(
        "/reports/reports.js", _static("reports.js", "text/javascript; charset=utf-8")
    )
    app.router.add_get("/reports/reports.css", _static("reports.css", "text/css; charset=utf-8"))
    app.cleanup_ctx.append(_lifecycle)
