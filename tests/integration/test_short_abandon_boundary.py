"""The short-abandon threshold, exactly at it and either side, in the pure KPIs and in SQL.

A caller who hangs up after waiting *at least* the threshold (5.0 s by default) is an abandon;
only a shorter wait is a short abandon (docs/kpis.md). Both paths must agree at 5.0 s.
"""

from __future__ import annotations

import copy

import asyncpg
import pytest

from callcenter.kpis import Thresholds, tally_calls
from callcenter.model import Call
from tests.integration.test_reports import load, recorded, report

WAITS = {"4.999": 4.999, "5.000": 5.0, "5.001": 5.001}


def abandons(threshold: float = 5.0) -> list[Call]:
    """The recorded abandon, cloned with waits just under, at and just over the threshold."""
    base = next(c for c in recorded()[0] if c.server == "abandon" and c.outcome == "abandoned")
    calls = []
    for label, wait in WAITS.items():
        call = copy.deepcopy(base)
        call.linkedid = call.uniqueid = f"{base.linkedid}-{label}"
        visit = call.visits[0]
        assert visit.entered_at is not None
        visit.answered_at = None
        visit.left_at = visit.entered_at + wait
        call.ended_at = visit.left_at
        assert visit.wait_s == pytest.approx(wait, abs=1e-9)
        calls.append(call)
    return calls


def test_exactly_the_threshold_is_an_abandon_in_the_pure_kpis() -> None:
    total = tally_calls(abandons(), Thresholds(short_abandon_s=5.0))[""]
    assert (total.short_abandoned, total.abandoned) == (1, 2)  # 4.999 short; 5.0 and 5.001 not


def test_moving_the_threshold_moves_the_boundary() -> None:
    total = tally_calls(abandons(), Thresholds(short_abandon_s=5.001))[""]
    assert (total.short_abandoned, total.abandoned) == (2, 1)


async def test_exactly_the_threshold_is_an_abandon_in_sql(pool: asyncpg.Pool) -> None:
    await load(pool, abandons())
    for threshold, expected in ((5.0, (1, 2)), (5.001, (2, 1))):
        th = Thresholds(short_abandon_s=threshold)
        got = (await report(pool, th=th)).total
        assert (got.short_abandoned, got.abandoned) == expected, threshold
        pure = tally_calls(abandons(), th)[""]
        assert (got.short_abandoned, got.abandoned) == (pure.short_abandoned, pure.abandoned)
