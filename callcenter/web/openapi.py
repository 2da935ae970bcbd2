"""The OpenAPI 3.1 document of the agent, ticket and webhook API (served at /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from callcenter.categories import DEFAULT_CATEGORIES
from callcenter.tickets import CHANNELS, STATUSES
from callcenter.webhooks.deliveries import STATES
from callcenter.webhooks.subscriptions import EVENTS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    str(code): {"$ref": f"#/components/responses/{name}"}
    for code, name in ((400, "BadRequest"), (401, "Unauthorized"), (403, "Forbidden"))
}
_NOT_FOUND = {"404": {"$ref": "#/components/responses/NotFound"}}


def _op(
    summary: str,
    roles: list[str] | None,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    public: bool = False,
) -> dict[str, Any]:
    """One operation; ``roles`` are the token roles it accepts (None: any valid token)."""
    op: dict[str, Any] = {"summary": summary, "responses": {**responses}}
    if not public:
        op["security"] = [{"bearer": []}, {"session": []}]
        op["x-roles"] = roles or ["agent", "supervisor", "admin", "integration"]
        op["responses"].update(_ERRORS)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}  # fmt: skip


def _query(name: str, description: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": kind, **extra}}  # fmt: skip


_TOKEN_Q = _query("token", "the API token, for clients that cannot send a header (GET only)")

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["forbidden"]},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    },
    "Principal": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "role": {"enum": ["agent", "supervisor", "admin", "integration"]},
            "agent": {"type": ["string", "null"]},
            "interface": {"type": ["string", "null"]},
        },
    },
    "Category": {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "tr": {"type": "string"},
            "en": {"type": "string"},
        },
        "examples": [DEFAULT_CATEGORIES[2].to_dict()],
    },
    "Ticket": {
        "type": "object",
        "properties": {
            "reference": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{6,}$"},
            "category": {"type": "string"},
            "status": {"enum": list(STATUSES)},
            "channel": {"enum": list(CHANNELS)},
            "caller_number": {"type": ["string", "null"], "description": "E.164 when parseable"},
            "caller_name": {"type": ["string", "null"]},
            "note": {"type": "string"},
            "fields": {"type": "object"},
            "agent": {"type": ["string", "null"]},
            "external_id": {"type": ["string", "null"]},
            "requests": {"type": "integer", "description": "requests merged into this ticket"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "closed_at": {"type": ["string", "null"], "format": "date-time"},
            "survey_candidate": {"type": "boolean"},
            "calls": {"type": "array", "items": {"type": "object"}},
            "merged": {"type": "boolean"},
        },
    },
    "DispositionRequest": {
        "type": "object",
        "required": ["kind"],
        "properties": {
            "kind": {"enum": ["info", "request"]},
            "category": {"type": "string", "description": "required for a request"},
            "note": {"type": "string", "maxLength": 4000},
            "server": {"type": "string", "description": "Asterisk server, if linkedids clash"},
            "agent": {"type": "string", "description": "non-agent tokens: who took the call"},
            "caller_number": {"type": "string", "description": "for calls not in the log"},
        },
    },
    "Disposition": {
        "type": "object",
        "properties": {
            "server": {"type": "string"},
            "linkedid": {"type": "string"},
            "agent": {"type": "string"},
            "kind": {"enum": ["info", "request"]},
            "category": {"type": ["string", "null"]},
            "note": {"type": "string"},
            "reference": {"type": ["string", "null"]},
            "duplicate": {"type": "boolean"},
            "ticket": {"oneOf": [_ref("Ticket"), {"type": "null"}]},
        },
    },
    "Pop": {
        "type": "object",
        "description": "The screen-pop, also pushed on /ws/agent as {type: pop}.",
        "properties": {
            "type": {"const": "pop"},
            "stage": {"enum": ["ringing", "connected", "ended"]},
            "server": {"type": "string"},
            "linkedid": {"type": "string"},
            "caller": {"type": "object"},
            "queue": {"type": ["string", "null"]},
            "ivr": {"type": "object"},
            "wait_s": {"type": ["number", "null"]},
            "recent_calls": {"type": "array", "items": {"type": "object"}},
            "open_tickets": {"type": "array", "items": {"type": "object"}},
            "history_pending": {"type": "boolean"},
        },
    },
    "Delivery": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "msg_id": {"type": "string", "description": "the webhook-id header"},
            "event_type": {"enum": list(EVENTS)},
            "subscription": {"type": "string"},
            "state": {"enum": list(STATES)},
            "attempts": {"type": "integer"},
            "last_status": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]},
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "log": {"type": "array", "items": {"type": "object"}},
            "payload": {"type": "object"},
        },
    },
    "StatusChange": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": list(STATUSES)},
            "note": {"type": "string"},
            "external_id": {"type": "string"},
        },
    },
    "TicketCreate": {
        "type": "object",
        "required": ["category"],
        "properties": {
            "category": {"type": "string"},
            "caller_number": {"type": "string"},
            "caller_name": {"type": "string"},
            "channel": {"enum": list(CHANNELS), "default": "api"},
            "linkedid": {"type": "string"},
            "server": {"type": "string"},
            "note": {"type": "string"},
            "fields": {"type": "object"},
        },
    },
    "InboundStatusWebhook": {
        "type": "object",
        "description": "Signed per Standard Webhooks (webhook-id, -timestamp, -signature).",
        "required": ["data"],
        "properties": {
            "type": {"type": "string", "examples": ["ticket.status"]},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": {
                "type": "object",
                "required": ["reference", "status"],
                "properties": {
                    "reference": {"type": "string"},
                    "status": {"enum": list(STATUSES)},
                    "note": {"type": "string"},
                    "external_id": {"type": "string"},
                },
            },
        },
    },
}

_DESK_SCHEMAS: dict[str, Any] = {
    "Desk": {
        "type": "object",
        "description": "An agent's seat; also pushed on /ws/agent as {type: desk}.",
        "properties": {
            "agent": {"type": ["string", "null"]},
            "interface": {"type": "string"},
            "server": {"type": "string"},
            "state": {
                "enum": [
                    "logged_out",
                    "available",
                    "ringing",
                    "on_call",
                    "wrapup",
                    "paused",
                    "unavailable",
                ]
            },
            "paused": {"type": "boolean"},
            "reason": {"type": ["string", "null"], "description": "the pause reason code"},
            "queues": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "queue": {"type": "string"},
                        "member": {"type": "boolean"},
                        "paused": {"type": "boolean"},
                        "reason": {"type": ["string", "null"]},
                    },
                },
            },
            "wrapup": {
                "type": "object",
                "properties": {
                    "active": {"type": "boolean"},
                    "left_s": {"type": ["number", "null"]},
                    "total_s": {"type": "number"},
                },
            },
            "pause_reasons": {"type": "array", "items": _ref("Category")},
            "ami_connected": {"type": "boolean"},
        },
    },
    "PauseRequest": {
        "type": "object",
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "description": "a pause reason code"}},
    },
    "Control": {
        "type": "object",
        "description": "The AMI action was accepted; the change shows once Asterisk reports it.",
        "properties": {"action": {"type": "string"}},
    },
    "MissedCaller": {
        "type": "object",
        "properties": {
            "server": {"type": "string"},
            "linkedid": {"type": "string", "description": "their latest abandoned call"},
            "caller_number": {"type": "string"},
            "caller_e164": {"type": ["string", "null"]},
            "caller_national": {"type": ["string", "null"]},
            "caller_name": {"type": ["string", "null"]},
            "queue": {"type": ["string", "null"]},
            "wait_s": {"type": ["number", "null"]},
            "started_at": {"type": "string", "format": "date-time"},
            "missed_calls": {"type": "integer"},
            "callbacks": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Callback": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "server": {"type": "string"},
            "linkedid": {"type": "string"},
            "agent": {"type": "string"},
            "ticket": {"type": ["string", "null"]},
            "result": {"enum": ["originated", "failed"]},
            "at": {"type": "string", "format": "date-time"},
        },
    },
    "SessionRequest": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string"}},
    },
}
_SCHEMAS.update(_DESK_SCHEMAS)

_SEAT = [
    _query("agent", "supervisor, admin, integration: the agent's member name"),
    _query("interface", "supervisor, admin, integration: the agent's member interface"),
]
_QUEUE = _path("queue", "queue name")
_CONTROL = {
    "202": _json(_ref("Control"), "Sent to Asterisk"),
    "409": _json(_ref("Error"), "Asterisk refused it, or no AMI link (code pbx_unavailable)"),
}
_ACTORS = ["agent", "supervisor", "admin", "integration"]


def _desk_paths() -> dict[str, Any]:
    """The agent's controls (callcenter.web.desk) and the page log-in."""
    return {
        "/api/agent/desk": {
            "get": _op("The agent's state", _ACTORS, {"200": _json(_ref("Desk"))}, params=_SEAT)
        },
        "/api/agent/pause": {
            "post": _op(
                "Pause in every queue with a reason (AMI QueuePause)",
                _ACTORS,
                _CONTROL,
                body=_ref("PauseRequest"),
                params=_SEAT,
            )
        },
        "/api/agent/unpause": {
            "post": _op("Unpause (AMI QueuePause)", _ACTORS, _CONTROL, params=_SEAT)
        },
        "/api/agent/wrapup/end": {
            "post": _op("End after-call work now", _ACTORS, _CONTROL, params=_SEAT)
        },
        "/api/agent/queues/{queue}/join": {
            "post": _op(
                "Log in to a queue (AMI QueueAdd)", _ACTORS, _CONTROL, params=[_QUEUE, *_SEAT]
            )
        },
        "/api/agent/queues/{queue}/leave": {
            "post": _op(
                "Log off a queue (AMI QueueRemove)", _ACTORS, _CONTROL, params=[_QUEUE, *_SEAT]
            )
        },
        "/api/agent/callbacks": {
            "get": _op(
                "Today's callers who hung up waiting and were not answered since",
                _ACTORS,
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "since": {"type": "string", "format": "date-time"},
                                "callers": {"type": "array", "items": _ref("MissedCaller")},
                            },
                        }
                    )
                },
                params=[_query("limit", "how many (max 500)", "integer")],
            )
        },
        "/api/agent/callbacks/{linkedid}/call": {
            "post": _op(
                "Call back: AMI Originate rings the agent's phone, then dials the citizen",
                _ACTORS,
                {
                    "201": _json(_ref("Callback"), "Originated and recorded"),
                    **_NOT_FOUND,
                    "409": _json(_ref("Error"), "Asterisk refused it, or no AMI link"),
                },
                params=[
                    _path("linkedid", "the abandoned call"),
                    _query("server", "Asterisk server"),
                    *_SEAT,
                ],
            )
        },
        "/agent/session": {
            "post": _op(
                "Log in with a token: sets the HttpOnly session cookie the pages use",
                None,
                {
                    "201": _json(_ref("Principal"), "Logged in"),
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "400": {"$ref": "#/components/responses/BadRequest"},
                },
                body=_ref("SessionRequest"),
                public=True,
            )
        },
        "/agent/login": {
            "get": _op(
                "One-time login link: sets the session cookie, redirects to /agent",
                None,
                {"303": {"description": "To /agent (or /agent?login=expired)"}},
                params=[_query("code", "the one-time code")],
                public=True,
            )
        },
        "/agent/logout": {
            "post": _op(
                "Log out: ends the session, clears the cookie",
                None,
                {"200": _json({"type": "object"})},
                public=True,
            )
        },
    }


_REF = _path("reference", "public ticket reference, e.g. 2026-004217")
_ID = _path("id", "delivery id")
_ADMIN = ["admin"]
_OPS = ["admin", "integration"]
_DESK = ["supervisor", "admin", "integration"]


def _paths() -> dict[str, Any]:
    return {
        "/api/openapi.json": {"get": _op("This document", None, {"200": _json({})}, public=True)},
        "/api/me": {
            "get": _op("Who the token belongs to", None, {"200": _json(_ref("Principal"))})
        },
        "/api/categories": {
            "get": _op(
                "Ticket categories",
                None,
                {"200": _json({"type": "array", "items": _ref("Category")})},
            )
        },
        "/api/calls/{linkedid}/disposition": {
            "post": _op(
                "Mark a call: information given, or a request that opens or joins a ticket",
                ["agent", *_DESK],
                {
                    "201": _json(_ref("Disposition"), "Recorded"),
                    "200": _json(_ref("Disposition"), "Already recorded (duplicate)"),
                    **_NOT_FOUND,
                },
                body=_ref("DispositionRequest"),
                params=[_path("linkedid", "the call's Asterisk linkedid")],
            )
        },
        "/api/tickets": {
            "get": _op(
                "List tickets, newest first",
                _DESK,
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"tickets": {"type": "array", "items": _ref("Ticket")}},
                        }
                    )
                },
                params=[
                    _query("status", "filter by status", enum=list(STATUSES)),
                    _query("number", "caller number, any spelling"),
                    _query("category", "category code"),
                    _query("before", "page: tickets with a lower id", "integer"),
                    _query("limit", "page size (max 500)", "integer"),
                ],
            ),
            "post": _op(
                "Open a ticket (or join the open one it repeats)",
                _DESK,
                {"201": _json(_ref("Ticket"), "Opened"), "200": _json(_ref("Ticket"), "Merged")},
                body=_ref("TicketCreate"),
            ),
        },
        "/api/tickets/{reference}": {
            "get": _op(
                "One ticket",
                ["agent", *_DESK],
                {"200": _json(_ref("Ticket")), **_NOT_FOUND},
                params=[_REF],
            )
        },
        "/api/tickets/{reference}/status": {
            "post": _op(
                "Change a ticket's status",
                _DESK,
                {
                    "200": _json(_ref("Ticket")),
                    **_NOT_FOUND,
                    "409": {"$ref": "#/components/responses/Conflict"},
                },
                body=_ref("StatusChange"),
                params=[_REF],
            )
        },
        "/api/surveys/candidates": {
            "get": _op(
                "Resolved tickets whose caller may be asked for feedback",
                _OPS,
                {"200": _json({"type": "object"})},
                params=[_query("limit", "how many (max 500)", "integer")],
            )
        },
        "/api/webhooks/ticket-status": {
            "post": {
                **_op(
                    "Status change from the ticketing backend (Standard Webhooks signature)",
                    None,
                    {
                        "200": _json({"type": "object"}),
                        "400": {"$ref": "#/components/responses/BadRequest"},
                        "401": {"$ref": "#/components/responses/Unauthorized"},
                        **_NOT_FOUND,
                        "409": {"$ref": "#/components/responses/Conflict"},
                    },
                    body=_ref("InboundStatusWebhook"),
                    public=True,
                ),
                "security": [{"webhookSignature": []}],
            }
        },
        "/api/webhooks/deliveries": {
            "get": _op(
                "The webhook delivery log, newest first",
                _OPS,
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "deliveries": {"type": "array", "items": _ref("Delivery")}
                            },
                        }
                    )
                },
                params=[
                    _query("state", "filter by state", enum=list(STATES)),
                    _query("subscription", "subscription name"),
                    _query("event_type", "event type", enum=list(EVENTS)),
                    _query("before", "page: deliveries with a lower id", "integer"),
                    _query("limit", "page size (max 500)", "integer"),
                ],
            )
        },
        "/api/webhooks/deliveries/{id}": {
            "get": _op(
                "One delivery with its payload and attempts",
                _OPS,
                {"200": _json(_ref("Delivery")), **_NOT_FOUND},
                params=[_ID],
            )
        },
        "/api/webhooks/deliveries/{id}/replay": {
            "post": _op(
                "Send a delivery again (same webhook-id, fresh 3-day window)",
                _ADMIN,
                {"202": _json(_ref("Delivery"), "Queued"), **_NOT_FOUND},
                params=[_ID],
            )
        },
        "/api/webhooks/subscriptions": {
            "get": _op(
                "Configured subscriptions and their state",
                _ADMIN,
                {"200": _json({"type": "object"})},
            )
        },
        "/api/webhooks/subscriptions/{name}/enable": {
            "post": _op(
                "Re-enable a subscription disabled by 410 Gone",
                _ADMIN,
                {"200": _json({"type": "object"}), **_NOT_FOUND},
                params=[
                    _path("name", "subscription name"),
                    _query("resume", "also resume held deliveries (default true)", "boolean"),
                ],
            )
        },
        "/ws/agent": {
            "get": _op(
                "WebSocket: hello, then {type: pop} on ringing, connect and end, {type: cancel}",
                ["agent", "supervisor", "admin"],
                {"101": {"description": "Switching protocols"}},
                params=[
                    _TOKEN_Q,
                    _query("agent", "supervisors: the member name to watch"),
                    _query("interface", "supervisors: the member interface to watch"),
                ],
            )
        },
        "/pop": {
            "get": _op(
                "The screen-pop as a page, for softphones that open a URL on a call",
                None,
                {
                    "200": {
                        "description": "HTML page, or JSON with format=json",
                        "content": {"text/html": {}, "application/json": {"schema": _ref("Pop")}},
                    },
                    **_NOT_FOUND,
                },
                params=[
                    _TOKEN_Q,
                    _query("linkedid", "the call's linkedid"),
                    _query("number", "the caller's number (when the linkedid is not known)"),
                    _query("server", "Asterisk server"),
                    _query("format", "html (default) or json", enum=["html", "json"]),
                    _query("lang", "tr (default) or en", enum=["tr", "en"]),
                ],
            )
        },
        "/agent": {
            "get": _op(
                "The agent page (Turkish, with an English switch)",
                [],
                {"200": {"description": "HTML", "content": {"text/html": {}}}},
                public=True,
            )
        },
        "/agent/agent.js": {
            "get": _op("The agent page's script", [], {"200": {"description": "JS"}}, public=True)
        },
        "/agent/agent.css": {
            "get": _op("The agent page's style", [], {"200": {"description": "CSS"}}, public=True)
        },
    }


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callcenter API",
            "version": "1",
            "description": (
                "Screen-pop, dispositions, tickets and webhooks. Send `Authorization: Bearer "
                "<token>` (tokens: `python -m callcenter token create`). Outgoing webhooks "
                f"({', '.join(EVENTS)}) are signed per Standard Webhooks."
            ),
        },
        "paths": {**_paths(), **_desk_paths()},
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "cc_session",
                    "description": "the pages' HttpOnly session (POST /agent/session, a link)",
                },
                "webhookSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "webhook-signature",
                    "description": "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
                },
            },
            "responses": {
                "BadRequest": _error("The request is malformed"),
                "Unauthorized": _error("Missing, unknown or revoked token, or bad signature"),
                "Forbidden": _error("The token's role may not do this"),
                "NotFound": _error("No such resource"),
                "Conflict": _error("Not allowed in the resource's current state"),
            },
        },
    }
