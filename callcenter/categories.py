"""Ticket categories: the municipality's services by default, configurable (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callcenter.config import ConfigError, Settings


@dataclass(frozen=True, slots=True)
class Category:
    """A ticket category: a stable code and its Turkish and English names."""

    code: str
    tr: str
    en: str

    def to_dict(self) -> dict[str, str]:
        """The category as the API lists it."""
        return {"code": self.code, "tr": self.tr, "en": self.en}


# From the Public Relations Directorate's own list of services (the municipality's brief).
DEFAULT_CATEGORIES = (
    Category("bilgi-rehberlik", "Bilgi ve yönlendirme", "Information and guidance"),
    Category("sosyal-yardim", "Sosyal yardım ve destek", "Social aid and support"),
    Category("masa-sandalye", "Masa-sandalye talebi", "Table and chair request"),
    Category("cozum-ofisi", "Çözüm ofisleri", "Solution offices"),
    Category("depremzede", "Depremzede talepleri", "Earthquake survivor requests"),
    Category("sikayet-oneri", "Şikâyet ve öneri", "Complaints and suggestions"),
    Category("cimer-acik-kapi", "CİMER / Açık Kapı takibi", "CİMER / Açık Kapı follow-up"),
    Category("ozel-gun", "Özel gün kutlamaları", "Special-day greetings"),
    Category("muhtarlik", "Muhtarlık işleri", "Neighbourhood (muhtarlık) matters"),
    Category("geri-arama", "Geri arama talebi", "Call-back request"),
)


def parse_labelled(setting: str, items: Any) -> tuple[Category, ...]:
    """Configured ``"code=Türkçe|English"`` strings or {code, tr, en} tables, codes unique."""
    found = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            code, tr, en = item.get("code"), item.get("tr"), item.get("en")
        elif isinstance(item, str) and "=" in item:
            code, _, names = item.partition("=")
            tr, _, en = names.partition("|")
        else:
            raise ConfigError(
                f"setting '{setting}[{i}]': expected \"code=Türkçe|English\" or a table"
            )
        code = str(code or "").strip()
        if not code or not str(tr or "").strip() or any(ch in code for ch in "\r\n"):
            raise ConfigError(f"setting '{setting}[{i}]': needs a one-line code and a Turkish name")
        found.append(Category(code, str(tr).strip(), str(en or tr).strip()))
    codes = [c.code for c in found]
    if len(set(codes)) != len(codes):
        raise ConfigError(f"setting '{setting}': codes must be unique, got {codes}")
    return tuple(found)


def categories(settings: Settings | None = None) -> tuple[Category, ...]:
    """The configured categories, or the defaults when none are configured."""
    if settings is None or not settings.ticket_categories:
        return DEFAULT_CATEGORIES
    return parse_labelled("ticket_categories", settings.ticket_categories)
