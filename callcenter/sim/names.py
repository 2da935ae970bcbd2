"""Turkish caller names, agent names and phone numbers for simulated calls."""

from __future__ import annotations

import random

FIRST = (
    "Ayşe Fatma Emine Hatice Zeynep Elif Meryem Şerife Zehra Sultan Hanife Merve Özlem Gülay "
    "Yasemin Selin Burcu Esra Derya Songül Mehmet Mustafa Ahmet Ali Hüseyin Hasan İbrahim "
    "İsmail Osman Yusuf Murat Ömer Ramazan Halil Süleyman Abdullah Emre Burak Oğuz Kemal Cem "
    "Şükrü Barış Uğur Gökhan Tuğba Nur Çağla Gülşen"
).split()
LAST = (
    "Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç "
    "Aslan Çetin Kara Koç Kurt Özkan Şimşek Polat Özer Erdoğan Güneş Aktaş Karaca Çınar Bulut "
    "Korkmaz Tekin Acar Aksoy Keskin Ünal Türkmen Gürsoy Uçar Bozkurt"
).split()
# GSM prefixes in use in Turkey, and Sancaktepe's landline area code.
MOBILE = ("0530", "0532", "0533", "0535", "0536", "0541", "0542", "0543", "0505", "0506", "0555")
LANDLINE = "0216"


def caller_name(rng: random.Random) -> str:
    """A plausible Turkish full name."""
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def phone_number(rng: random.Random) -> str:
    """A plausible Turkish phone number (mostly mobile, some Istanbul-Anatolia landlines)."""
    prefix = LANDLINE if rng.random() < 0.15 else rng.choice(MOBILE)
    return prefix + f"{rng.randrange(10_000_000):07d}"


def agent_names(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct agent names (deterministic for a seeded ``rng``)."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = caller_name(rng)
        if name not in seen or len(seen) >= len(FIRST) * len(LAST):
            seen.add(name)
            names.append(name)
    return names
