"""The pop as a page: a caller with no earlier calls gets a sentence, not a bare header row."""

from __future__ import annotations

from callcenter.model import Call
from callcenter.popup import build_pop
from callcenter.web import pop_page


def test_no_history_says_so_in_both_languages() -> None:
    pop = build_pop(Call("pbx1", "1.1", "1.1", 0.0, caller_number="05321234567"))
    assert "Daha önce araması yok." in pop_page.render(pop, "tr", "/pop?lang=en")
    assert "No earlier calls." in pop_page.render(pop, "en", "/pop?lang=tr")
    earlier = [{"server": "pbx1", "linkedid": "0.9", "started_at": "2026-11-20T09:30:00.000Z",
                "outcome": "answered", "agent": "Elif Şahin"}]  # fmt: skip
    page = pop_page.render(build_pop(pop_call(), recent_calls=earlier), "tr", "/pop")
    assert "Elif Şahin" in page and "Daha önce araması yok." not in page


def pop_call() -> Call:
    return Call("pbx1", "1.1", "1.1", 0.0, caller_number="05321234567")
