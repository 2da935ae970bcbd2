"""Numbers, dates, times, amounts and references said by each language's rules (pure)."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal

import pytest

from callcenter.ivr import say


def words(names: list[str], language: str) -> str:
    """What the caller hears: each building block's text, months by name."""
    months = {f"callcenter/month-{m:02d}": name for m, name in _MONTHS[language].items()}
    return " ".join(
        "," if n == say.PAUSE else say.VOCABULARY[n][language] if n in say.VOCABULARY else months[n]
        for n in names
    )


_MONTHS = {
    "tr": {5: "Mayıs", 6: "Haziran", 12: "Aralık", 1: "Ocak"},
    "en": {5: "May", 6: "June", 12: "December", 1: "January"},
}


@pytest.mark.parametrize(
    ("n", "tr", "en"),
    [
        (0, "sıfır", "zero"),
        (1, "bir", "one"),
        (7, "yedi", "seven"),
        (10, "on", "ten"),
        (11, "on bir", "eleven"),
        (19, "on dokuz", "nineteen"),
        (20, "yirmi", "twenty"),
        (45, "kırk beş", "forty five"),
        (99, "doksan dokuz", "ninety nine"),
        (100, "yüz", "one hundred"),
        (101, "yüz bir", "one hundred and one"),
        (110, "yüz on", "one hundred and ten"),
        (200, "iki yüz", "two hundred"),
        (999, "dokuz yüz doksan dokuz", "nine hundred and ninety nine"),
        (1000, "bin", "one thousand"),
        (1001, "bin bir", "one thousand and one"),
        (1100, "bin yüz", "one thousand one hundred"),
        (1999, "bin dokuz yüz doksan dokuz", "one thousand nine hundred and ninety nine"),
        (2000, "iki bin", "two thousand"),
        (2026, "iki bin yirmi altı", "two thousand and twenty six"),
        (10000, "on bin", "ten thousand"),
        (101000, "yüz bir bin", "one hundred and one thousand"),
        (
            350878,
            "üç yüz elli bin sekiz yüz yetmiş sekiz",
            "three hundred and fifty thousand eight hundred and seventy eight",
        ),  # fmt: skip
        (1000000, "bir milyon", "one million"),
        (1001000, "bir milyon bin", "one million one thousand"),
        (2000000000, "iki milyar", "two billion"),
    ],
)
def test_numbers(n: int, tr: str, en: str) -> None:
    assert words(say.number(n, "tr"), "tr") == tr
    assert words(say.number(n, "en"), "en") == en
    assert say.count(n, "tr") == say.number(n, "tr")


def test_turkish_never_says_bir_before_yuz_or_bin() -> None:
    for n in range(0, 1_000_000, 37):
        said = words(say.number(n, "tr"), "tr").split()
        for i, word in enumerate(said[:-1]):
            assert not (word == "bir" and said[i + 1] in ("yüz", "bin") and i == 0), n
        if n % 1000 // 100 == 1:
            assert "bir yüz" not in " ".join(said), n


@pytest.mark.parametrize("bad", [-1, say.MAX_NUMBER + 1])
def test_numbers_out_of_range_are_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        say.number(bad, "tr")
    with pytest.raises(TypeError):
        say.number(True, "tr")


@pytest.mark.parametrize(
    ("when", "tr", "en"),
    [
        (date(2026, 12, 5), "beş Aralık iki bin yirmi altı", "December fifth twenty twenty six"),
        (
            date(2026, 6, 15),
            "on beş Haziran iki bin yirmi altı",
            "June fifteenth twenty twenty six",
        ),  # fmt: skip
        (date(2027, 1, 1), "bir Ocak iki bin yirmi yedi", "January first twenty twenty seven"),
        (
            date(2026, 5, 21),
            "yirmi bir Mayıs iki bin yirmi altı",
            "May twenty first twenty twenty six",
        ),  # fmt: skip
        (date(2026, 5, 30), "otuz Mayıs iki bin yirmi altı", "May thirtieth twenty twenty six"),
        (date(2005, 5, 31), "otuz bir Mayıs iki bin beş", "May thirty first two thousand and five"),
    ],
)
def test_dates(when: date, tr: str, en: str) -> None:
    assert words(say.say_date(when, "tr"), "tr") == tr
    assert words(say.say_date(when, "en"), "en") == en


@pytest.mark.parametrize(
    ("y", "en"),
    [
        (1999, "nineteen ninety nine"),
        (1900, "nineteen hundred"),
        (1905, "nineteen oh five"),
        (2000, "two thousand"),
        (2009, "two thousand and nine"),
        (2010, "twenty ten"),
        (2026, "twenty twenty six"),
    ],
)
def test_english_years_in_pairs(y: int, en: str) -> None:
    assert words(say.year(y, "en"), "en") == en
    assert say.year(y, "tr") == say.number(y, "tr")


@pytest.mark.parametrize(
    ("when", "tr", "en"),
    [
        (time(14, 30), "saat on dört otuz", "two thirty p.m."),
        (time(9, 5), "saat dokuz sıfır beş", "nine oh five a.m."),
        (time(10, 0), "saat on", "ten o'clock a.m."),
        (time(0, 0), "saat sıfır", "twelve o'clock a.m."),
        (time(12, 45), "saat on iki kırk beş", "twelve forty five p.m."),
        (time(23, 59), "saat yirmi üç elli dokuz", "eleven fifty nine p.m."),
    ],
)
def test_times(when: time, tr: str, en: str) -> None:
    assert words(say.say_time(when, "tr"), "tr") == tr
    assert words(say.say_time(when, "en"), "en") == en


@pytest.mark.parametrize(
    ("value", "tr", "en"),
    [
        (
            "123.50",
            "yüz yirmi üç lira elli kuruş",
            "one hundred and twenty three lira and fifty kurush",
        ),  # fmt: skip
        (1000, "bin lira", "one thousand lira"),
        (Decimal("0.05"), "sıfır lira beş kuruş", "zero lira and five kurush"),
    ],
)
def test_amounts(value: str | int | Decimal, tr: str, en: str) -> None:
    assert words(say.amount(value, "tr"), "tr") == tr
    assert words(say.amount(value, "en"), "en") == en


@pytest.mark.parametrize(
    ("ref", "tr", "en"),
    [
        (
            "2026-000123",
            "iki bin yirmi altı , tire , sıfır sıfır sıfır , yüz yirmi üç",
            "twenty twenty six , dash , zero zero zero , one two three",
        ),  # fmt: skip
        (
            "2026-004217",
            "iki bin yirmi altı , tire , sıfır sıfır dört , iki yüz on yedi",
            "twenty twenty six , dash , zero zero four , two one seven",
        ),  # fmt: skip
        (
            "2027-100000",
            "iki bin yirmi yedi , tire , yüz , sıfır sıfır sıfır",
            "twenty twenty seven , dash , one zero zero , zero zero zero",
        ),  # fmt: skip
        ("AB-12/3", "bir iki üç", "one two three"),  # not a reference of ours: its digits
        ("12-34", "bir iki , üç dört", "one two , three four"),
    ],
)
def test_references_group_by_group(ref: str, tr: str, en: str) -> None:
    assert words(say.reference(ref, "tr"), "tr") == tr
    assert words(say.reference(ref, "en"), "en") == en


def test_a_language_without_rules_uses_the_default_ones() -> None:
    assert say.number(1000, "ku") == say.number(1000, "tr")


def test_every_name_said_is_a_building_block_or_a_month() -> None:
    blocks = set(say.building_blocks()) | {f"callcenter/month-{m:02d}" for m in range(1, 13)}
    found: set[str] = set()
    for language in say.LANGUAGES:
        for n in [*range(0, 2100), *range(2100, 10**7, 9973), say.MAX_NUMBER]:
            found.update(say.number(n, language))
        day = date(2026, 1, 1)
        while day.year == 2026:
            found.update(say.say_date(day, language))
            day += timedelta(days=1)
        for minute in range(0, 24 * 60):
            found.update(say.say_time(time(minute // 60, minute % 60), language))
        for serial in (1, 42, 123, 4217, 99999, 100000, 999999):
            found.update(say.reference(f"2026-{serial:06d}", language))
        found.update(say.amount("99.99", language))
    # Exactly: every name said exists, and no building block is dead weight.
    assert found == blocks
