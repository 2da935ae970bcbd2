"""Item 7 of issue 11: what an agent reads about the caller (the IVR route in the menu's own
words, a withheld number) from what Asterisk and the IVR put on the channel."""

from __future__ import annotations

from datetime import date

import pytest

from callcenter.ivr.client import agi_environment, run_agi_session, variables_set
from callcenter.ivr.desk import MemoryDesk
from callcenter.ivr.labels import ivr_words
from callcenter.ivr.menu import load_menu
from callcenter.ivr.server import FastAgiServer, call_info
from callcenter.model import CallEnded
from callcenter.pipeline import Pipeline
from callcenter.popup import build_pop
from callcenter.web.pop_page import render

MENU = load_menu()


@pytest.mark.parametrize(
    ("variables", "tr", "en"),
    [
        ({"CC_IVR_PATH": "main>sosyal", "CC_IVR_CHOICE": "Gıda yardımı"},
         "Ana menü › Sosyal yardım › Gıda yardımı", "Main menu › Social aid › Food aid"),
        ({"CC_IVR_PATH": "main", "CC_IVR_CHOICE": "Depremzede başvurusu"},
         "Ana menü › Depremzede başvurusu", "Main menu › Earthquake survivors"),
        # Backed out of "sosyal" with *, then chose in "diger": the detour is not shown.
        ({"CC_IVR_PATH": "main>sosyal>main>diger", "CC_IVR_CHOICE": "Muhtarlık işleri"},
         "Ana menü › Diğer konular › Muhtarlık işleri",
         "Main menu › Other subjects › Neighbourhood matters"),
        ({"CC_IVR_PATH": "main>masa-sandalye", "CC_IVR_CHOICE": "agent"},
         "Ana menü › Masa-sandalye talebi › Müşteri temsilcisi",
         "Main menu › Table-and-chair request › Agent"),
        ({"CC_IVR_PATH": "main", "CC_IVR_CHOICE": "no_choice"},
         "Ana menü › Seçim yapılmadı", "Main menu › No choice"),
        ({"CC_IVR_PATH": "main>sosyal"}, "Ana menü › Sosyal yardım", "Main menu › Social aid"),
        ({"CC_IVR_END": "fallback", "CC_QUEUE": "genel"},
         "Sesli yanıt sistemine ulaşılamadı", "IVR unavailable"),
    ],
)  # fmt: skip
def test_the_route_in_the_menus_words(variables: dict[str, str], tr: str, en: str) -> None:
    words = ivr_words(MENU, variables)
    assert " › ".join(words["tr"]) == tr
    assert " › ".join(words["en"]) == en


def test_no_ivr_trail_no_words() -> None:
    assert ivr_words(MENU, {}) == {}


async def test_the_pop_shows_the_route_the_ivr_left_on_the_channel() -> None:
    """A real FastAGI session's variables, as VarSet events, into the call and its pop."""
    server = FastAgiServer(MENU, MemoryDesk(), today=lambda: date(2026, 12, 1))
    await server.start("127.0.0.1", 0)
    try:
        env = agi_environment("ivr", ["1795884499.0"])
        commands = await run_agi_session("127.0.0.1", server.port, env, ["1", "*", "6", "2"])
    finally:
        await server.close()
    channel = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": "1795884499.0",
               "Linkedid": "1795884499.0", "CallerIDNum": "05321234567"}  # fmt: skip
    pipe = Pipeline()
    pipe.feed_headers("pbx1", {"Event": "Newchannel", **channel, "Context": "incoming"}, 1.0)
    for name, value in variables_set(commands).items():
        varset = {"Event": "VarSet", **channel, "Variable": name, "Value": value}
        pipe.feed_headers("pbx1", varset, 2.0)
    [call] = pipe.tracker.calls.values()
    pop = build_pop(call, menu=MENU)
    assert pop["ivr"]["words"]["tr"] == ["Ana menü", "Diğer konular", "Muhtarlık işleri"]
    assert pop["ivr"]["words"]["en"] == ["Main menu", "Other subjects", "Neighbourhood matters"]
    html = render(pop, "tr", "?lang=en")
    assert "Ana menü › Diğer konular › Muhtarlık işleri" in html and "incoming" not in html


@pytest.mark.parametrize("raw", ["anonymous", "Anonymous", "restricted", "<unknown>", ""])
def test_a_withheld_number_is_stored_as_null_and_shown_as_withheld(raw: str) -> None:
    channel = {"Channel": "PJSIP/trunk-00000002", "Uniqueid": "1795884600.0",
               "Linkedid": "1795884600.0", "CallerIDNum": raw, "CallerIDName": raw}  # fmt: skip
    pipe = Pipeline()
    pipe.feed_headers("pbx1", {"Event": "Newchannel", **channel, "Context": "incoming"}, 1.0)
    effects = pipe.feed_headers("pbx1", {"Event": "Hangup", **channel, "Cause": "16"}, 3.0)
    [call] = [e.call for e in effects if isinstance(e, CallEnded)]
    assert call.caller_number is None and call.caller_name is None
    assert call.to_dict()["caller_number"] is None
    pop = build_pop(call, stage="ended")
    assert pop["caller"]["withheld"] is True and pop["caller"]["number"] is None
    assert "Gizli numara" in render(pop, "tr", "?lang=en")
    assert "Withheld" in render(pop, "en", "?lang=tr")


def test_a_known_number_is_not_withheld() -> None:
    channel = {"Channel": "PJSIP/trunk-00000003", "Uniqueid": "1795884700.0",
               "Linkedid": "1795884700.0", "CallerIDNum": "05321234567"}  # fmt: skip
    pipe = Pipeline()
    pipe.feed_headers("pbx1", {"Event": "Newchannel", **channel}, 1.0)
    [call] = pipe.tracker.calls.values()
    pop = build_pop(call)
    assert pop["caller"]["withheld"] is False and pop["caller"]["e164"] == "+905321234567"


def test_the_ivr_never_files_a_ticket_under_anonymous() -> None:
    env = agi_environment("ivr", ["1.1"], callerid="anonymous", calleridname="Anonymous")
    info = call_info(env, date(2026, 12, 1))
    assert info.caller_number is None and info.caller_name is None
