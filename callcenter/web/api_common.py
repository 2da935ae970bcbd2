"""Shared pieces of the JSON API: request bodies, responses, the JSON error middleware."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from callcenter.tickets import TicketError
from callcenter.web.auth import error_body, json_error

log = structlog.get_logger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    503: "unavailable",
}
# TicketError codes as HTTP statuses.
TICKET_STATUS = {"not_found": 404, "bad_transition": 409}


def dumps(obj: Any) -> str:
    """JSON text that keeps Turkish letters readable."""
    return json.dumps(obj, ensure_ascii=False, default=str)


def ok(data: Any, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.json_response(data, status=status, dumps=dumps)


def _is_bad_text(text: str) -> bool:
    """Whether a string cannot be stored: a NUL, or a lone surrogate (not encodable as UTF-8)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def bad_text(value: Any) -> str | None:
    """Why a JSON value cannot be stored as text (NUL, lone surrogate ``"\\ud800"``), or None."""
    if isinstance(value, str):
        if not _is_bad_text(value):
            return None
        return "a NUL character" if "\x00" in value else "a lone UTF-16 surrogate (\\ud800-\\udfff)"
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        reason = bad_text(item)
        if reason is not None:
            return reason
    return None


async def body_of(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400/415 naming what is wrong."""
    if request.content_type != "application/json":
        raise json_error(415, "unsupported_media_type", "send a JSON body (application/json)")
    try:
        data = await request.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can parse
        raise json_error(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise json_error(400, "bad_json", "the body must be a JSON object")
    reason = bad_text(data)
    if reason is not None:
        raise json_error(400, "bad_json", f"the body contains {reason}")
    return data


def text_field(data: dict[str, Any], name: str, *, limit: int = 200, required: bool = False) -> str:
    """A string field of a body, trimmed; 400 if it has the wrong type or length."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise json_error(400, "missing_field", f"field {name!r} is required", field=name)
        return ""
    if not isinstance(value, str):
        raise json_error(400, "bad_field", f"field {name!r} must be a string", field=name)
    if len(value) > limit:
        raise json_error(400, "bad_field", f"field {name!r} exceeds {limit} characters", field=name)
    return value.strip()


def ticket_error(exc: TicketError) -> web.HTTPException:
    """A TicketError as the API answers it."""
    return json_error(TICKET_STATUS.get(exc.code, 400), exc.code, str(exc))


def int_query(request: web.Request, name: str, default: int | None, top: int = 500) -> int | None:
    """A non-negative integer query parameter (capped at ``top``); 400 if malformed."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise json_error(400, "bad_query", f"query parameter {name!r} must be an integer")
    return min(int(raw), top)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every error under ``/api/`` into a JSON body (unknown routes and crashes too)."""
    if "\x00" in request.path or any("\x00" in k + v for k, v in request.query.items()):
        # PostgreSQL refuses NUL in text: caught here, not as a 500 from whichever query.
        return web.json_response(
            error_body("bad_request", "NUL characters are not accepted"), status=400
        )
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        code = _CODES.get(exc.status, "error")
        return web.json_response(
            error_body(code, exc.reason), status=exc.status, headers=headers, dumps=dumps
        )
    except Exception:
        log.exception("api_error", path=request.path)
        return web.json_response(
            error_body("internal", "internal error; it has been logged"), status=500
        )
