"""Requests the OpenAPI document never describes: any method, path, query, body and token.

Complements the schemathesis run (which only sends documented operations): undocumented
routes, wrong methods, odd bytes in paths and queries, bodies of any type. Nothing answers 5xx,
and under ``/api/`` every error is the JSON error body.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from tests.fuzz.budget import budget, ran
from tests.fuzz.live_app import AppThread, LiveApp
from tests.fuzz.test_api_schemathesis import check_error_body

_TIMEOUT_S = 15.0
_MAX_LINE = 8190 - 20  # aiohttp's request-line limit, less "GET " and " HTTP/1.1"
_TEMPLATES = [
    "/api/openapi.json", "/api/me", "/api/categories", "/api/calls/{}/disposition",
    "/api/tickets", "/api/tickets/{}", "/api/tickets/{}/status", "/api/surveys/candidates",
    "/api/webhooks/ticket-status", "/api/webhooks/deliveries", "/api/webhooks/deliveries/{}",
    "/api/webhooks/deliveries/{}/replay", "/api/webhooks/subscriptions",
    "/api/webhooks/subscriptions/{}/enable", "/api/reports", "/api/{}", "/api/{}/{}", "/pop",
    "/ws/agent", "/ws/wallboard", "/healthz", "/metrics", "/agent", "/wallboard", "/reports",
]  # fmt: skip
_ODD = st.sampled_from(
    ["", "0", "-1", "2026-000001", "9" * 40, "1795884609.0", "%", "..", "/", "\x00", "ş", "é",
     "null", "[]", "{}", "true", "' OR 1=1 --", "<script>", "a" * 3000]
)  # fmt: skip
_TEXT = _ODD | st.text(max_size=40)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=6),
    max_leaves=20,
)
_BODY = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["kind", "status", "category", "caller_number", "note", "fields", "agent"]),
        _JSON,
    ).map(lambda v: json.dumps(v).encode()),
)


@pytest.fixture(scope="module")
def live(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The service with every web feature, on a real socket, for the whole module."""
    app = AppThread(db_url, tmp_path_factory.mktemp("spool"))
    try:
        yield app.start()
    finally:
        app.stop()


def _send(
    live: LiveApp, method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[int, str, str]:
    """One raw HTTP request; returns status, content type and body text."""
    where = urlsplit(live.base)
    conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=_TIMEOUT_S)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        return response.status, response.getheader("Content-Type") or "", text
    finally:
        conn.close()


@budget(300)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    template=st.sampled_from(_TEMPLATES),
    params=st.lists(_TEXT, min_size=2, max_size=2),
    query=st.dictionaries(
        st.sampled_from(
            [
                "token",
                "status",
                "number",
                "limit",
                "before",
                "from",
                "to",
                "state",
                "format",
                "lang",
                "linkedid",
                "agent",
                "server",
                "category",
            ]
        )
        | _TEXT,
        _TEXT,
        max_size=4,
    ),  # fmt: skip
    body=_BODY,
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; x"]),
    who=st.sampled_from(["agent", "supervisor", "admin", "integration", "revoked", "bad", None]),
)
def test_anything_at_any_route(
    live: LiveApp,
    method: str,
    template: str,
    params: list[str],
    query: dict[str, str],
    body: bytes,
    content_type: str,
    who: str | None,
) -> None:
    ran("api_random")
    path = template.format(*(quote(p, safe="") or "x" for p in params))
    target = path + ("?" + urlencode(query) if query else "")
    headers = {"Content-Type": content_type} if content_type else {}
    if who is not None:
        headers["Authorization"] = "Bearer " + live.tokens.get(who, "cct_" + "A" * 43)
    note(f"{method} {target[:300]} {headers} {body[:200]!r}")
    status, kind, text = _send(live, method, target, headers, body)
    if len(target.encode()) > _MAX_LINE:
        # aiohttp's HTTP parser refuses the request line itself, before any handler runs.
        assert status == 400
    elif path.startswith("/api/") and method != "HEAD":
        check_error_body(status, kind, text)
    else:
        # Pages, metrics, sockets: errors may be aiohttp's plain text, but never a crash.
        assert status < 500, f"{status}: {text[:300]}"


_DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("method", "target", "extra", "body"),
    [
        # Each of these answered 500 (or text/plain) before the fuzzers found it.
        ("POST", "/api/webhooks/ticket-status", {}, b"\xff\xfe"),
        (
            "POST",
            "/api/webhooks/ticket-status",
            {"webhook-id": "msg_1", "webhook-timestamp": "{now}", "webhook-signature": "v1,ş"},
            b"{}",
        ),
        ("GET", "/api/webhooks/deliveries?subscription=%00", {}, b""),
        ("GET", "/api/tickets?number=%00", {}, b""),
        ("GET", "/pop?number=%00", {}, b""),
        ("POST", "/api/tickets", {}, json.dumps({"category": "bilgi", "note": "a\0b"}).encode()),
        (
            "POST",
            "/api/tickets",
            {},
            json.dumps({"category": "bilgi", "fields": {"\0": 1}}).encode(),
        ),
        ("POST", "/api/tickets", {}, _DEEP),
        ("POST", "/api/webhooks/ticket-status", {}, _DEEP),
        ("GET", "/ws/agent?agent=x", {}, b""),
    ],
)
def test_inputs_that_once_crashed_are_clear_errors(
    live: LiveApp, method: str, target: str, extra: dict[str, str], body: bytes
) -> None:
    import time

    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {live.tokens['admin']}",
    }
    headers.update({k: v.replace("{now}", str(int(time.time()))) for k, v in extra.items()})
    # http.client sends str headers as latin-1; the signature's "ş" goes as its UTF-8 bytes.
    headers = {k: v.encode().decode("latin-1") for k, v in headers.items()}
    status, kind, text = _send(live, method, target, headers, body)
    assert 400 <= status < 500, (status, text[:200])
    check_error_body(status, kind, text)
