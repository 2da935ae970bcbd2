"""Fuzzing budgets and example counters shared by the fuzz tests and bench/fuzz.py.

``make test`` runs the short form; ``CALLCENTER_FUZZ_SCALE`` multiplies every budget (the long
form in bench/fuzz.py), and ``CALLCENTER_FUZZ_REPORT`` names a JSON file that receives how many
examples each property ran.
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

SCALE = float(os.environ.get("CALLCENTER_FUZZ_SCALE", "1") or 1)
# Examples each property actually ran in this process (the report bench/fuzz.py prints).
RAN: Counter[str] = Counter()


def budget(short: int) -> settings:
    """Hypothesis settings running ``short`` examples, times the fuzz scale."""
    return settings(
        max_examples=max(1, int(short * SCALE)),
        deadline=None,
        # Inputs come from recorded traces and big byte strings: slow generation is expected.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def ran(name: str) -> None:
    """Counts one example of the property ``name``."""
    RAN[name] += 1
