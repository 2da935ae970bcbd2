"""Finds the line of a TOML table or key, because ``tomllib`` reports none for valid files.

A light scan of the text: table headers (``[menus.main]``, ``[[x]]``) open a region, and a
key assignment (``prompt =``, ``"1" =``, ``options.1 =``) inside it is recorded under its full
dotted path. Keys inside an inline table share the line of the key that holds the table, so a
lookup falls back to the longest recorded prefix of the path.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_MULTILINE = ('"""', "'''")

Path = tuple[str, ...]


def _parse_key(text: str) -> tuple[Path, str] | None:
    """Parses a dotted key at the start of ``text``; returns it and the rest of the text."""
    parts: list[str] = []
    rest = text.lstrip()
    while True:
        if rest[:1] in ('"', "'"):
            quote = rest[0]
            end = rest.find(quote, 1)
            if end < 0:
                return None
            parts.append(rest[1:end])
            rest = rest[end + 1 :].lstrip()
        else:
            match = _BARE.match(rest)
            if not match:
                return None
            parts.append(match.group())
            rest = rest[match.end() :].lstrip()
        if not rest.startswith("."):
            return tuple(parts), rest
        rest = rest[1:].lstrip()


class LineIndex:
    """Maps TOML table and key paths to the 1-based line where they are written."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        table: Path = ()
        in_multiline: str | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if in_multiline:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                inner = line.lstrip("[")
                parsed = _parse_key(inner)
                if parsed and parsed[1].startswith("]"):
                    table = parsed[0]
                    self.lines.setdefault(table, number)
                continue
            parsed = _parse_key(line)
            if parsed is None or not parsed[1].startswith("="):
                continue
            self.lines.setdefault(table + parsed[0], number)
            value = parsed[1][1:]
            for quote in _MULTILINE:
                if value.count(quote) % 2 == 1:
                    in_multiline = quote

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its longest written prefix; None if nothing matches."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None
