"""API tokens with roles, and the one check every endpoint makes: ``await require(request, ...)``.

Roles: ``agent`` (an agent's screen: the pop and dispositions), ``supervisor`` (dashboards,
tickets), ``admin`` (everything, webhook replay), ``integration`` (CRMs, the ticketing backend).
Tokens are created with ``python -m callcenter token create --role R --name N`` and stored as
their SHA-256 (they are 256-bit random, so no slow hash is needed).

Use in a handler::

    from callcenter.web.auth import require

    async def wallboard_data(request: web.Request) -> web.Response:
        principal = await require(request, "supervisor", "admin")  # 401/403 JSON otherwise
        ...

or as a decorator (the principal is then at ``request[PRINCIPAL]``)::

    @requires("supervisor", "admin")
    async def handler(request: web.Request) -> web.Response: ...

Clients send ``Authorization: Bearer <token>``; GET requests (WebSockets, the ``/pop`` page a
softphone opens) may pass ``?token=`` instead. ``require`` with no roles accepts any valid token.
Errors are ``{"error": {"code": ..., "message": ...}}`` (see ``json_error``).

Browser pages log in once and then carry no token at all: ``POST /agent/session`` with a token,
or a one-time link ``/agent/login?code=…`` (``token create --link``, ``token link ID``), opens
a session whose secret lives in an HttpOnly, SameSite=Strict cookie (``SESSION_COOKIE``).
``session_principal`` is the one function that accepts that cookie: ``require`` falls back to
it when a request has no token. A session acts as the token it was opened with and ends with
it (revocation) or when it expires; a cookie-authenticated request that carries an ``Origin``
must come from a page of this site (its Host, or ``public_url``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

ROLES = ("agent", "supervisor", "admin", "integration")
TOKEN_PREFIX = "cct_"
# A revoked token stays usable in other processes for at most this long.
CACHE_TTL_S = 30.0
_NEGATIVE_TTL_S = 5.0
_CACHE_MAX = 10_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    413: web.HTTPRequestEntityTooLarge,
    415: web.HTTPUnsupportedMediaType,
    422: web.HTTPUnprocessableEntity,
    429: web.HTTPTooManyRequests,
    500: web.HTTPInternalServerError,
    503: web.HTTPServiceUnavailable,
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name and role, and for agents their queue-member identity."""

    token_id: int
    name: str
    role: str
    agent: str | None = None
    interface: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The principal as ``/api/me`` reports it."""
        return {
            "name": self.name,
            "role": self.role,
            "agent": self.agent,
            "interface": self.interface,
        }


PRINCIPAL = web.RequestKey("principal", Principal)

_cache: dict[str, tuple[Principal | None, float]] = {}


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The JSON body of every API error."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def json_error(status: int, code: str, message: str, **details: Any) -> web.HTTPException:
    """An HTTP exception with a JSON error body, to ``raise``."""
    cls = _STATUS.get(status, web.HTTPInternalServerError)
    headers = {"WWW-Authenticate": 'Bearer realm="callcenter"'} if status == 401 else None
    return cls(
        text=json.dumps(error_body(code, message, **details), ensure_ascii=False),
        content_type="application/json",
        headers=headers,
    )


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(
    pool: Any,
    *,
    role: str,
    name: str,
    agent: str | None = None,
    interface: str | None = None,
) -> tuple[str, Principal]:
    """Stores a new token and returns it (the only time it is visible) with its principal."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if not name.strip():
        raise ValueError("a token needs a name")
    if role == "agent" and not (agent or interface):
        raise ValueError("an agent token needs --agent (member name) or --interface")
    token = new_token()
    token_id = await pool.fetchval(
        """
        INSERT INTO api_tokens (name, role, token_hash, prefix, agent, interface)
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
        """,
        name.strip(),
        role,
        hash_token(token),
        token[: len(TOKEN_PREFIX) + 6],
        agent,
        interface,
    )
    return token, Principal(int(token_id), name.strip(), role, agent, interface)


async def list_tokens(pool: Any) -> list[dict[str, Any]]:
    """Every token's metadata (never the token), oldest first."""
    rows = await pool.fetch(
        """
        SELECT id, name, role, prefix, agent, interface, created_at, last_used_at, revoked_at
        FROM api_tokens ORDER BY id
        """
    )
    return [dict(r) for r in rows]


async def revoke_token(pool: Any, token_id: int) -> bool:
    """Revokes a token by id; True if it was active."""
    done = await pool.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", token_id
    )
    _cache.clear()
    return str(done).endswith(" 1")


async def lookup(pool: Any, token: str) -> Principal | None:
    """The principal of an active token, or None; results are cached briefly."""
    digest = hash_token(token)
    now = time.monotonic()
    cached = _cache.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    row = await pool.fetchrow(
        """
        UPDATE api_tokens SET last_used_at = now()
        WHERE token_hash = $1 AND revoked_at IS NULL
        RETURNING id, name, role, agent, interface
        """,
        digest,
    )
    principal = (
        Principal(int(row["id"]), row["name"], row["role"], row["agent"], row["interface"])
        if row is not None
        else None
    )
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[digest] = (principal, now + (CACHE_TTL_S if principal else _NEGATIVE_TTL_S))
    return principal


def token_of(request: web.Request) -> str | None:
    """The token a request carries: a Bearer header, or ``?token=`` on GET."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method == "GET":
        return request.query.get("token") or None
    return None


SESSION_COOKIE = "cc_session"
_LINK_PREFIX = "ccl_"


async def create_session(pool: Any, token_id: int, hours: float) -> str:
    """Opens a browser session acting as token ``token_id``; returns the cookie's secret."""
    secret = secrets.token_urlsafe(32)
    # Expired sessions and links go as new ones come (indexed; a handful of rows a day).
    await pool.execute("DELETE FROM web_sessions WHERE expires_at < now()")
    await pool.execute("DELETE FROM login_links WHERE expires_at < now() - interval '1 day'")
    await pool.execute(
        """
        INSERT INTO web_sessions (session_hash, token_id, expires_at)
        VALUES ($1, $2, now() + make_interval(secs => $3))
        """,
        hash_token(secret),
        token_id,
        hours * 3600.0,
    )
    return secret


async def end_session(pool: Any, secret: str) -> None:
    """Ends a browser session (logging out); unknown secrets are ignored."""
    await pool.execute("DELETE FROM web_sessions WHERE session_hash = $1", hash_token(secret))
    _cache.pop("s:" + hash_token(secret), None)


async def create_login_link(pool: Any, token_id: int, minutes: float) -> str:
    """A one-time login code for token ``token_id``, valid for ``minutes``."""
    code = _LINK_PREFIX + secrets.token_urlsafe(24)
    await pool.execute(
        """
        INSERT INTO login_links (code_hash, token_id, expires_at)
        VALUES ($1, $2, now() + make_interval(secs => $3))
        """,
        hash_token(code),
        token_id,
        minutes * 60.0,
    )
    return code


async def redeem_login_link(pool: Any, code: str) -> int | None:
    """The token id of an unused, unexpired login code of an active token; uses the code up."""
    row = await pool.fetchrow(
        """
        UPDATE login_links l SET used_at = now()
        FROM api_tokens t
        WHERE l.code_hash = $1 AND l.used_at IS NULL AND l.expires_at > now()
          AND t.id = l.token_id AND t.revoked_at IS NULL
        RETURNING l.token_id
        """,
        hash_token(code),
    )
    return int(row["token_id"]) if row is not None else None


async def _session_lookup(pool: Any, secret: str) -> Principal | None:
    """The principal of a live session (its token active), cached like tokens."""
    key = "s:" + hash_token(secret)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and cached[1] > now:
        return cached[0]
    row = await pool.fetchrow(
        """
        SELECT t.id, t.name, t.role, t.agent, t.interface
        FROM web_sessions s JOIN api_tokens t ON t.id = s.token_id
        WHERE s.session_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL
        """,
        key[2:],
    )
    principal = (
        Principal(int(row["id"]), row["name"], row["role"], row["agent"], row["interface"])
        if row is not None
        else None
    )
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[key] = (principal, now + (CACHE_TTL_S if principal else _NEGATIVE_TTL_S))
    return principal


def _same_site(request: web.Request, origin: str) -> bool:
    """Whether an ``Origin`` header names this site (its Host, or the configured public URL)."""
    from urllib.parse import urlsplit

    from callcenter.web.server import SERVICE

    host = urlsplit(origin).netloc
    public = urlsplit(request.app[SERVICE].settings.public_url).netloc
    return bool(host) and host in (request.host, public)


async def session_principal(request: web.Request) -> Principal | None:
    """The principal of the request's session cookie, or None if it carries none.

    Raises 401 for an unknown or expired session, and 403 when the request names another
    site as its ``Origin`` (a form post or a WebSocket opened by another site's page:
    SameSite=Strict already keeps the cookie off those; this is the second lock).
    """
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    origin = request.headers.get("Origin")
    if origin and not _same_site(request, origin):
        raise json_error(403, "forbidden", "a session may act only from this site's pages")
    principal = await _session_lookup(_pool_of(request), secret)
    if principal is None:
        raise json_error(401, "unauthorized", "the session has expired: log in again")
    return principal


def _pool_of(request: web.Request) -> Any:
    """The service's database pool, or a 503 if the service has none yet."""
    from callcenter.web.server import SERVICE

    pool = request.app[SERVICE].pool
    if pool is None:
        raise json_error(503, "unavailable", "the database is not connected yet")
    return pool


async def require(request: web.Request, *roles: str) -> Principal:
    """The caller's principal if its role is one of ``roles`` (any role if none); else 401/403."""
    if PRINCIPAL in request:
        principal = request[PRINCIPAL]
    else:
        token = token_of(request)
        if token is None:
            from_session = await session_principal(request)
            if from_session is None:
                raise json_error(
                    401,
                    "unauthorized",
                    "an API token is required: send Authorization: Bearer <token>",
                )
            principal = from_session
        else:
            principal_or_none = await lookup(_pool_of(request), token)
            if principal_or_none is None:
                raise json_error(401, "unauthorized", "the API token is unknown or revoked")
            principal = principal_or_none
        request[PRINCIPAL] = principal
    if roles and principal.role not in roles:
        raise json_error(
            403,
            "forbidden",
            f"role {principal.role!r} may not do this; it needs one of: {', '.join(roles)}",
            role=principal.role,
            allowed=list(roles),
        )
    return principal


def requires(*roles: str) -> Callable[[Handler], Handler]:
    """Decorates a handler so it runs only for a token with one of ``roles``."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            await require(request, *roles)
            return await handler(request)

        return wrapper

    return decorate
