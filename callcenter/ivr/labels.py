"""The caller's way through the IVR in the menu's own words, for agents (pure).

The IVR leaves ``CC_IVR_PATH`` (the menus entered, ``main>sosyal``) and ``CC_IVR_CHOICE`` (the
chosen key's label, ``agent`` or ``no_choice``) on the channel; an agent needs "Ana menü ›
Sosyal yardım › Gıda yardımı", not dialplan contexts. A menu is named by its ``label`` (or the
label of the key that leads to it); English uses ``label_en`` where the menu file gives one.
"""

from __future__ import annotations

from collections.abc import Mapping

from callcenter.ivr.menu import IvrMenu, Menu

LANGUAGES = ("tr", "en")
_SPECIAL = {
    "agent": {"tr": "Müşteri temsilcisi", "en": "Agent"},
    "no_choice": {"tr": "Seçim yapılmadı", "en": "No choice"},
    "fallback": {"tr": "Sesli yanıt sistemine ulaşılamadı", "en": "IVR unavailable"},
}


def _words(tr: str, en: str) -> dict[str, str]:
    return {"tr": tr, "en": en or tr}


def _route(path: list[str]) -> list[str]:
    """The menus the caller ended in, without the detours they backed out of."""
    route: list[str] = []
    for name in path:
        if name in route:
            del route[route.index(name) + 1 :]
        else:
            route.append(name)
    return route


def _menu_words(menu: IvrMenu, name: str, parent: Menu | None) -> dict[str, str]:
    found = menu.menus.get(name)
    if found is not None and found.label:
        return _words(found.label, found.label_en)
    if parent is not None:
        for option in parent.options.values():
            if option.action == "menu" and option.target == name and option.label:
                return _words(option.label, option.label_en)
    if name == menu.start:
        return _words("Ana menü", "Main menu")
    return _words(name, name)


def ivr_words(menu: IvrMenu, ivr_vars: Mapping[str, str]) -> dict[str, list[str]]:
    """The route and the choice, per language: {"tr": ["Ana menü", …], "en": […]}."""
    if ivr_vars.get("CC_IVR_END") == "fallback" and not ivr_vars.get("CC_IVR_PATH"):
        return {lang: [_SPECIAL["fallback"][lang]] for lang in LANGUAGES}
    path = [name for name in ivr_vars.get("CC_IVR_PATH", "").split(">") if name]
    if not path:
        return {}
    out: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    parent: Menu | None = None
    for name in _route(path):
        words = _menu_words(menu, name, parent)
        for lang in LANGUAGES:
            out[lang].append(words[lang])
        parent = menu.menus.get(name, parent)
    choice = ivr_vars.get("CC_IVR_CHOICE", "")
    if choice in _SPECIAL:
        words = _SPECIAL[choice]
    elif choice:
        options = parent.options.values() if parent is not None else ()
        match = next((o for o in options if o.label == choice), None)
        words = _words(choice, match.label_en if match else "")
    else:
        return out
    for lang in LANGUAGES:
        out[lang].append(words[lang])
    return out
