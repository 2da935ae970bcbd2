"""Pure ticket rules: categories from settings, references as citizens key them in."""

from __future__ import annotations

import pytest

from callcenter.categories import DEFAULT_CATEGORIES, categories
from callcenter.config import ConfigError, Settings, load_settings
from callcenter.dispositions import CallbackTickets
from callcenter.model import Call, Visit
from callcenter.tickets import TRANSITIONS, parse_reference


def test_default_categories_are_the_municipality_services() -> None:
    codes = {c.code for c in categories(Settings())}
    assert {"masa-sandalye", "sosyal-yardim", "depremzede", "muhtarlik"} <= codes
    assert categories() == DEFAULT_CATEGORIES
    assert all(c.tr and c.en for c in DEFAULT_CATEGORIES)


def test_categories_from_strings_and_tables() -> None:
    settings = Settings(
        ticket_categories=(
            "zabita=Zabıta|Municipal police",
            {"code": "temizlik", "tr": "Temizlik", "en": "Cleaning"},
        )
    )
    found = categories(settings)
    assert [c.code for c in found] == ["zabita", "temizlik"]
    assert found[0].tr == "Zabıta" and found[0].en == "Municipal police"


def test_categories_from_the_environment() -> None:
    settings = load_settings(env={"CALLCENTER_TICKET_CATEGORIES": "a=Bir|One,b=İki|Two"})
    assert [c.code for c in categories(settings)] == ["a", "b"]


@pytest.mark.parametrize("bad", [("nocode",), ("=Ad|Name",), ("a=A|A", "a=B|B")])
def test_bad_categories_are_named(bad: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="ticket_categories"):
        categories(Settings(ticket_categories=bad))


@pytest.mark.parametrize(
    ("keyed", "reference"),
    [
        ("2026-004217", "2026-004217"),
        ("2026004217", "2026-004217"),
        ("2026 4217", "2026-004217"),
        ("20261234567", "2026-1234567"),
        ("12", None),
        ("", None),
    ],
)
def test_references_as_keyed_in(keyed: str, reference: str | None) -> None:
    assert parse_reference(keyed) == reference


def test_closed_tickets_can_only_be_reopened() -> None:
    assert TRANSITIONS["resolved"] == {"open"}
    assert TRANSITIONS["rejected"] == {"open"}
    assert "resolved" in TRANSITIONS["open"]


def _abandoned(wait: float, number: str | None = "05057654321") -> Call:
    call = Call("pbx1", "1.1", "1.1", 0.0, caller_number=number)
    visit = Visit(queue="genel", entered_at=10.0, left_at=10.0 + wait, outcome="abandoned")
    call.visits.append(visit)
    return call


def test_callback_rule_is_off_by_default_and_needs_a_long_wait() -> None:
    off = CallbackTickets(lambda: None, Settings())
    assert not off.wanted(_abandoned(300))
    on = CallbackTickets(lambda: None, Settings(callback_tickets=True, callback_min_wait_s=60))
    assert on.wanted(_abandoned(60))
    assert not on.wanted(_abandoned(59.9))
    assert not on.wanted(_abandoned(300, number=None))
