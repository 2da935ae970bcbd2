"""Numbers, dates, times, amounts and references as lists of the IVR's own prompt files (pure).

Asterisk 22 has no Turkish rules for SayNumber/SayDigits/SayDate (``say.c``: "Language tr not
currently supported, defaulting to English"), so the IVR says them itself from building-block
prompts that the prompts build generates in every language (``callcenter/say/…``). The same
file name holds each language's word (``callcenter/say/1000`` is "bin" in ``sounds/tr`` and
"thousand" in ``sounds/en``); what differs is how the words are put together:

* Turkish: "bin" not "bir bin", "yüz" not "bir yüz", tens then units ("on bir", "yirmi altı"),
  a date is cardinal day, month name, year ("beş Aralık iki bin yirmi altı"), a time is
  "saat" and the 24-hour clock ("saat on dört otuz"), money is "… lira … kuruş".
* English (British usage, as espeak-ng's ``en`` voice speaks): "one hundred and one", "one
  thousand and one", dates as "December fifth, twenty twenty-six", years in pairs, the
  12-hour clock ("two thirty p.m.").

A reference such as ``2026-000123`` is read as a person would read it over the phone, group by
group with a short pause: the year, "tire"/"dash", then the serial in groups of three (Turkish
reads each group as a number after its leading zeros, "sıfır sıfır sıfır, yüz yirmi üç";
English reads the digits, "zero zero zero, one two three").

A language without rules of its own is said with the Turkish rules (the default language);
every name returned is in ``VOCABULARY`` or is a month (``callcenter/month-NN``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time
from decimal import Decimal

PREFIX = "callcenter/say/"
PAUSE = PREFIX + "pause"  # a short silence between the groups of a reference
PAUSE_S = 0.35
LANGUAGES = ("tr", "en")
MAX_NUMBER = 10**12 - 1

_TR_UNITS = ("sıfır", "bir", "iki", "üç", "dört", "beş", "altı", "yedi", "sekiz", "dokuz")
_TR_TENS = ("", "on", "yirmi", "otuz", "kırk", "elli", "altmış", "yetmiş", "seksen", "doksan")
_EN_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = ("", "ten", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_EN_ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
).split()
_TR_ORDINALS = (
    "birinci ikinci üçüncü dördüncü beşinci altıncı yedinci sekizinci dokuzuncu onuncu"
).split()


def _tr_cardinal(n: int) -> str:
    tens, units = divmod(n, 10)
    return " ".join(w for w in (_TR_TENS[tens], _TR_UNITS[units] if units else "") if w)


def _vocabulary() -> dict[str, dict[str, str]]:
    words: dict[str, dict[str, str]] = {}
    for n in range(20):
        words[str(n)] = {"tr": _tr_cardinal(n) if n else "sıfır", "en": _EN_SMALL[n]}
    for tens in range(2, 10):
        words[str(tens * 10)] = {"tr": _TR_TENS[tens], "en": _EN_TENS[tens]}
    for n in range(1, 20):
        tr = _TR_ORDINALS[n - 1] if n <= 10 else f"on {_TR_ORDINALS[n - 11]}"
        words[f"ord-{n}"] = {"tr": tr, "en": _EN_ORDINALS[n - 1]}
    words["ord-20"] = {"tr": "yirminci", "en": "twentieth"}
    words["ord-30"] = {"tr": "otuzuncu", "en": "thirtieth"}
    words.update(
        {
            "100": {"tr": "yüz", "en": "hundred"},
            "1000": {"tr": "bin", "en": "thousand"},
            "1000000": {"tr": "milyon", "en": "million"},
            "1000000000": {"tr": "milyar", "en": "billion"},
            "and": {"tr": "ve", "en": "and"},
            "oh": {"tr": "sıfır", "en": "oh"},
            "dash": {"tr": "tire", "en": "dash"},
            "hour": {"tr": "saat", "en": "at"},
            "oclock": {"tr": "saat", "en": "o'clock"},
            "am": {"tr": "öğleden önce", "en": "a.m."},
            "pm": {"tr": "öğleden sonra", "en": "p.m."},
            "lira": {"tr": "lira", "en": "lira"},
            "kurus": {"tr": "kuruş", "en": "kurush"},
        }
    )
    return {PREFIX + name: texts for name, texts in words.items()}


VOCABULARY: Mapping[str, Mapping[str, str]] = _vocabulary()
"""Every building block with its text per language: part of the recording script."""


def _w(token: str | int) -> str:
    return f"{PREFIX}{token}"


def _month(number: int) -> str:
    return f"callcenter/month-{number:02d}"


def _rules(language: str) -> str:
    return language if language in LANGUAGES else LANGUAGES[0]


def _check(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"a whole number is needed, not {n!r}")
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"{n} is outside 0..{MAX_NUMBER}")


# ---- Turkish ---------------------------------------------------------------------------------


def _tr_below_1000(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out: list[str] = []
    if hundreds:
        # "yüz", never "bir yüz"; "iki yüz".
        if hundreds > 1:
            out.append(_w(hundreds))
        out.append(_w(100))
    tens, units = divmod(rest, 10)
    if tens:
        out.append(_w(tens * 10))
    if units:
        out.append(_w(units))
    return out


def _tr_number(n: int) -> list[str]:
    if n == 0:
        return [_w(0)]
    out: list[str] = []
    for scale in (10**9, 10**6, 10**3):
        count, n = divmod(n, scale)
        if count:
            # "bin", never "bir bin" (but "bir milyon", "yüz bir bin").
            if not (scale == 1000 and count == 1):
                out += _tr_below_1000(count)
            out.append(_w(scale))
    return out + _tr_below_1000(n)


# ---- English ---------------------------------------------------------------------------------


def _en_below_100(n: int) -> list[str]:
    if n < 20:
        return [_w(n)] if n else []
    tens, units = divmod(n, 10)
    return [_w(tens * 10), *([_w(units)] if units else [])]


def _en_below_1000(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out: list[str] = []
    if hundreds:
        out += [_w(hundreds), _w(100)]
        if rest:
            out.append(_w("and"))
    return out + _en_below_100(rest)


def _en_number(n: int) -> list[str]:
    if n == 0:
        return [_w(0)]
    out: list[str] = []
    for scale in (10**9, 10**6, 10**3):
        count, n = divmod(n, scale)
        if count:
            out += [*_en_below_1000(count), _w(scale)]
    if out and 0 < n < 100:
        out.append(_w("and"))  # "one thousand and one"
    return out + _en_below_1000(n)


def _en_year(year: int) -> list[str]:
    high, low = divmod(year, 100)
    if not 1000 <= year <= 9999 or 2000 <= year <= 2009 or low == 0 and high % 10 == 0:
        return _en_number(year)  # "two thousand and five", "two thousand"
    if low == 0:
        return [*_en_below_100(high), _w(100)]  # "nineteen hundred"
    if low < 10:
        return [*_en_below_100(high), _w("oh"), _w(low)]  # "nineteen oh five"
    return _en_below_100(high) + _en_below_100(low)  # "twenty twenty-six"


def _en_ordinal(n: int) -> list[str]:
    if n < 20:
        return [_w(f"ord-{n}")]
    tens, units = divmod(n, 10)
    if not units:
        return [_w(f"ord-{n}")] if n in (20, 30) else [*_en_number(n)]
    return [_w(tens * 10), _w(f"ord-{units}")]  # "twenty" "first"


# ---- public ----------------------------------------------------------------------------------


def number(n: int, language: str) -> list[str]:
    """A whole number (0 … 999 999 999 999) said by the rules of ``language``."""
    _check(n)
    return _en_number(n) if _rules(language) == "en" else _tr_number(n)


def count(n: int, language: str) -> list[str]:
    """A count of things (callers waiting, days): the number itself."""
    return number(n, language)


def digits(text: str, language: str) -> list[str]:
    """Each digit on its own ("bir iki üç"); other characters are skipped."""
    _rules(language)
    return [_w(ch) for ch in text if ch in "0123456789"]


def year(y: int, language: str) -> list[str]:
    """A year: cardinal in Turkish, in pairs in English ("twenty twenty-six")."""
    _check(y)
    return _en_year(y) if _rules(language) == "en" else _tr_number(y)


def ordinal(n: int, language: str) -> list[str]:
    """A day of the month as an ordinal (1-31), as English dates say it."""
    if not 1 <= n <= 31:
        raise ValueError(f"no ordinal for {n}")
    if _rules(language) == "en":
        return _en_ordinal(n)
    return [_w(f"ord-{n}")] if n <= 19 or n in (20, 30) else _tr_number(n)


def say_date(when: date, language: str) -> list[str]:
    """A date: "beş Aralık iki bin yirmi altı" / "December fifth, twenty twenty-six"."""
    if _rules(language) == "en":
        return [_month(when.month), *_en_ordinal(when.day), *_en_year(when.year)]
    return [*_tr_number(when.day), _month(when.month), *_tr_number(when.year)]


def say_time(when: time, language: str) -> list[str]:
    """A time of day to the minute: "saat on dört otuz" / "two thirty p.m."."""
    hour, minute = when.hour, when.minute
    if _rules(language) == "en":
        twelve = hour % 12 or 12
        suffix = _w("am" if hour < 12 else "pm")
        if minute == 0:
            return [*_en_number(twelve), _w("oclock"), suffix]
        if minute < 10:
            return [*_en_number(twelve), _w("oh"), _w(minute), suffix]
        return [*_en_number(twelve), *_en_number(minute), suffix]
    out = [_w("hour"), *_tr_number(hour)]
    if 0 < minute < 10:
        out += [_w(0), _w(minute)]  # 14:05 is "on dört sıfır beş"
    elif minute:
        out += _tr_number(minute)
    return out


def amount(value: Decimal | int | str, language: str) -> list[str]:
    """An amount of Turkish lira: "yüz yirmi üç lira elli kuruş" / "… lira and fifty kurush"."""
    cents = Decimal(value).quantize(Decimal("0.01"))
    if cents < 0:
        raise ValueError(f"a negative amount cannot be said: {value}")
    lira, kurus = divmod(int(cents * 100), 100)
    en = _rules(language) == "en"
    out = [*number(lira, language), _w("lira")]
    if kurus:
        out += [*([_w("and")] if en else []), *number(kurus, language), _w("kurus")]
    return out


def _group(chunk: str, language: str) -> list[str]:
    """One group of a reference: English digit by digit, Turkish zeros then the number."""
    if _rules(language) == "en":
        return digits(chunk, language)
    significant = chunk.lstrip("0")
    zeros = [_w(0)] * (len(chunk) - len(significant))
    return zeros + (_tr_number(int(significant)) if significant else [])


def reference(ref: str, language: str, group: int = 3) -> list[str]:
    """A ticket reference (``2026-000123``) read group by group, as a person reads it out."""
    parts = [part for part in ref.replace(" ", "-").split("-") if part]
    if len(parts) == 2 and all(p.isdigit() for p in parts) and len(parts[0]) == 4:
        head, serial = parts
        out = [*year(int(head), language), PAUSE, _w("dash"), PAUSE]
        chunks = [serial[max(0, i - group) : i] for i in range(len(serial), 0, -group)][::-1]
        for i, chunk in enumerate(chunks):
            out += ([PAUSE] if i else []) + _group(chunk, language)
        return out
    # Anything else: every digit, a pause where the reference has a separator.
    out = []
    for i, part in enumerate(parts):
        said = digits(part, language)
        out += ([PAUSE] if i and said and out else []) + said
    return out


def building_blocks() -> list[str]:
    """Every file these functions may name (months excepted: they are in the menu file)."""
    return [*VOCABULARY, PAUSE]
