"""Webhook subscriptions from the settings: URL, whsec_ secrets, event filter, allowed hosts."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from callcenter.config import ConfigError, Settings
from callcenter.webhooks.signing import secret_bytes

EVENTS = ("call.ended", "ticket.created", "ticket.updated", "survey.completed")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One receiver of webhooks; several secrets sign each message during a key rotation."""

    name: str
    url: str
    secrets: tuple[str, ...] = field(repr=False)
    events: tuple[str, ...] = ("*",)

    def wants(self, event_type: str) -> bool:
        """Whether this subscription receives events of ``event_type`` (``ticket.*`` works)."""
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.events)

    @property
    def host(self) -> str:
        """The URL's host name, lower case."""
        return (urlsplit(self.url).hostname or "").lower()


def host_allowed(url: str, allowed: Iterable[str]) -> bool:
    """Whether a URL is http(s) and points at one of the allowed hosts."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and host in {h.lower() for h in allowed}


def _strings(name: str, value: Any) -> tuple[str, ...]:
    """A list of strings from TOML/JSON (a single string is a list of one)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"setting {name}: expected a list of strings")


def _one(i: int, table: Any, allowed: tuple[str, ...]) -> Subscription:
    """Validates one ``[[webhooks]]`` table."""
    where = f"'webhooks[{i}]'"
    if not isinstance(table, Mapping):
        raise ConfigError(f"setting {where}: expected a table {{name, url, secrets, events}}")
    unknown = set(table) - {"name", "url", "secrets", "secret", "events"}
    if unknown:
        raise ConfigError(f"setting {where}: unknown keys {sorted(unknown)}")
    url = str(table.get("url", ""))
    name = str(table.get("name") or urlsplit(url).hostname or f"webhook{i}")
    secrets_ = _strings(f"{where}.secrets", table.get("secrets", table.get("secret", [])))
    if not secrets_:
        raise ConfigError(f"setting {where}: at least one whsec_ secret is required")
    for secret in secrets_:
        try:
            secret_bytes(secret)
        except ValueError as exc:
            raise ConfigError(f"setting {where}.secrets: {exc}") from None
    events = _strings(f"{where}.events", table.get("events", ["*"]))
    for pattern in events:
        if not any(fnmatch.fnmatchcase(e, pattern) for e in EVENTS):
            raise ConfigError(
                f"setting {where}.events: {pattern!r} matches none of {', '.join(EVENTS)}"
            )
    if not host_allowed(url, allowed):
        raise ConfigError(
            f"setting {where}.url: {url!r} must be http(s) to a host listed in "
            "webhook_allowed_hosts"
        )
    return Subscription(name, url, secrets_, events)


def subscriptions_from(settings: Settings) -> list[Subscription]:
    """The configured subscriptions, validated; raises ConfigError naming the bad setting."""
    subs = [_one(i, t, settings.webhook_allowed_hosts) for i, t in enumerate(settings.webhooks)]
    names = [s.name for s in subs]
    if len(set(names)) != len(names):
        raise ConfigError(f"setting 'webhooks': names must be unique, got {names}")
    return subs


def inbound_secrets(settings: Settings) -> tuple[str, ...]:
    """The secrets the ticketing backend signs with, validated."""
    for secret in settings.webhook_inbound_secrets:
        try:
            secret_bytes(secret)
        except ValueError as exc:
            raise ConfigError(f"setting 'webhook_inbound_secrets': {exc}") from None
    return tuple(settings.webhook_inbound_secrets)
