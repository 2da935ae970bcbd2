"""Schemathesis against /api/openapi.json of the real running app: no 5xx, every error JSON.

Cases come from the served document (valid and invalid parameters and bodies), sent with any
role's token, a revoked one, a made-up one or none, to real ids (calls, tickets) or made-up
ones. Next to the 5xx and error-body checks, schemathesis' own checks hold the answers to the
document: documented status codes, content types and response schemas.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import given, note
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.budget import budget, ran
from tests.fuzz.live_app import AppThread, LiveApp

# Who calls: a role's token, a revoked one, a made-up one, or no token at all.
_WHO = ["agent", "supervisor", "admin", "integration", "revoked", "made-up", None]
_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def live(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The service with every web feature, on a real socket, for the whole module."""
    app = AppThread(db_url, tmp_path_factory.mktemp("spool"))
    try:
        yield app.start()
    finally:
        app.stop()


@pytest.fixture(scope="module")
def schema(live: LiveApp) -> schemathesis.BaseSchema:
    """The OpenAPI document as the running app serves it."""
    return schemathesis.openapi.from_url(f"{live.base}/api/openapi.json", timeout=_TIMEOUT_S)


def check_error_body(status: int, content_type: str, body_text: str) -> None:
    """An error is JSON ``{"error": {"code", "message"}}`` with a non-empty code and message."""
    assert status < 500, f"{status}: {body_text[:300]}"
    if status < 400:
        return
    assert content_type.startswith("application/json"), f"{status} as {content_type!r}"
    body = json.loads(body_text)
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]


def _with_real_ids(live: LiveApp, case: Any, data: st.DataObject) -> None:
    """Points some cases at things that exist, so they get past the 404s."""
    params = case.path_parameters or {}
    if "reference" in params and live.references and data.draw(st.booleans()):
        params["reference"] = data.draw(st.sampled_from(live.references))
    if "linkedid" in params and live.linkedids and data.draw(st.booleans()):
        params["linkedid"] = data.draw(st.sampled_from(live.linkedids))


@budget(200)
@given(data=st.data())
def test_documented_operations(
    live: LiveApp, schema: schemathesis.BaseSchema, data: st.DataObject
) -> None:
    ran("api_schemathesis")
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = data.draw(schema.as_strategy(generation_mode=mode))
    _with_real_ids(live, case, data)
    who = data.draw(st.sampled_from(_WHO))
    headers = {}
    if who is not None:
        token = live.tokens.get(who, "cct_made-up-token")
        headers["Authorization"] = f"Bearer {token}"
    note(case.as_curl_command(headers=headers))
    response = case.call(base_url=live.base, headers=headers, timeout=_TIMEOUT_S)
    # Schemathesis' response keeps headers lower-cased, each a list of values.
    kind = (response.headers.get("content-type") or [""])[0]
    check_error_body(response.status_code, kind, response.content.decode("utf-8", "replace"))
    case.validate_response(response, checks=_CHECKS)


def test_the_document_is_what_schemathesis_loads(schema: schemathesis.BaseSchema) -> None:
    """Every documented operation loads (a broken one would be silently left out above)."""
    operations = list(schema.get_all_operations())
    assert operations
    for result in operations:
        result.ok()
    assert Path(__file__).name  # keeps the module's path in failure reports
