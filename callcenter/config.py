"""Settings: the one place that reads environment variables and the optional TOML file.

Precedence: built-in defaults < TOML file (``CALLCENTER_CONFIG`` or ``--config``) < environment.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class AsteriskServer:
    """One Asterisk Manager Interface endpoint the service ingests."""

    name: str = "pbx1"
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "callcenter"
    secret: str = field(default="", repr=False)
    # Seconds without any traffic before the watchdog pings; a ping unanswered for
    # action_timeout seconds means the link is dead and is reconnected.
    ping_interval: float = 10.0
    action_timeout: float = 10.0
    connect_timeout: float = 5.0


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with, with sane defaults."""

    asterisk: tuple[AsteriskServer, ...] = (AsteriskServer(),)
    database_url: str = field(default="postgresql://postgres@127.0.0.1:5432/test", repr=False)
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_format: str = "console"  # "console" for people, "json" for production
    log_level: str = "info"
    mask_numbers: bool = True  # KVKK: phone numbers are personal data
    # KVKK retention (callcenter.retention): calls older than this many days lose their personal
    # data daily, "anonymise" (figures kept) or "delete" (rows gone); 0 turns it off.
    retention_days: int = 730
    retention_mode: str = "anonymise"
    # Wrap-up seconds after a call per queue (no AMI event marks its end); "*" is the default.
    wrapup_seconds: Mapping[str, float] = field(default_factory=lambda: {"*": 3.0})
    service_level_seconds: Mapping[str, float] = field(default_factory=lambda: {"*": 20.0})
    short_abandon_seconds: float = 5.0
    # Wallboard alerts per queue ("*" is the default): a queue's tile turns amber, then red,
    # when today's service level falls below these percentages, or when its longest current
    # wait passes these seconds.
    wallboard_sl_amber: Mapping[str, float] = field(default_factory=lambda: {"*": 85.0})
    wallboard_sl_red: Mapping[str, float] = field(default_factory=lambda: {"*": 80.0})
    wallboard_wait_amber: Mapping[str, float] = field(default_factory=lambda: {"*": 30.0})
    wallboard_wait_red: Mapping[str, float] = field(default_factory=lambda: {"*": 60.0})
    # With more queues than this the wallboard draws compact tiles (one line per queue).
    wallboard_compact_above: int = 6
    # The call center's local day: "today" on the wallboard starts at its midnight.
    timezone: str = "Europe/Istanbul"
    db_batch_size: int = 500
    db_flush_interval: float = 0.2
    # Bounded in-memory buffer of call records waiting for PostgreSQL; beyond it records
    # spill to a file in spool_dir (keep it on persistent storage) until the database is back.
    db_buffer_limit: int = 100_000
    spool_dir: str = "var/spool"
    # The wallboard shows agents' names and states: supervisors (and admins) only, with a
    # token in the page URL (?token=…) for a TV; false makes it open on a trusted network.
    wallboard_requires_token: bool = True
    # ---- tickets and webhooks (callcenter.tickets, callcenter.webhooks) ----
    # Numbers without a country code are read as numbers of this region.
    phone_region: str = "TR"
    # Ticket categories as "code=Türkçe ad|English name" or TOML {code, tr, en}; () = defaults.
    ticket_categories: tuple[Any, ...] = ()
    # A request with the number and category of an open ticket this young joins that ticket.
    ticket_dedupe_days: float = 30.0
    # Off by default: abandoned calls that waited at least callback_min_wait_s become tickets.
    callback_tickets: bool = False
    callback_min_wait_s: float = 60.0
    callback_category: str = "geri-arama"
    # [[webhooks]] tables {name, url, secrets = ["whsec_…"], events = ["ticket.*"]}; JSON in env.
    webhooks: tuple[Any, ...] = field(default=(), repr=False)
    # Webhook URLs must point at one of these hosts (guards against a mistyped or hostile URL).
    webhook_allowed_hosts: tuple[str, ...] = ()
    # Secrets the ticketing backend signs its status webhooks with (several during rotation).
    webhook_inbound_secrets: tuple[str, ...] = field(default=(), repr=False)
    # ---- IVR over FastAGI (callcenter.ivr) ----
    # Asterisk's AGI(agi://callcenter:4573/ivr) connects here; "0.0.0.0" inside a container.
    fastagi_enabled: bool = True
    fastagi_host: str = "127.0.0.1"
    fastagi_port: int = 4573
    # Who may connect to FastAGI (IPs or networks); empty means loopback plus the addresses of
    # the configured Asterisk servers. Others are closed before a byte is read.
    fastagi_allowed_peers: tuple[str, ...] = ()
    # When set, every AGI URL must carry it: AGI(agi://callcenter:4573/ivr?secret=…,…).
    fastagi_secret: str = field(default="", repr=False)
    # A session must name a call that is live on a watched Asterisk server (seen over AMI).
    fastagi_verify_call: bool = True
    # The IVR menu file (TOML); empty means the packaged Sancaktepe menu.
    ivr_menu: str = ""
    # ---- the agent's desk (callcenter.agentdesk, /agent) ----
    # Pause reasons agents choose from, as "code=Türkçe|English" or TOML {code, tr, en}; the
    # code is the QueuePause Reason (the wallboard's and Prometheus' reason); () = defaults.
    pause_reasons: tuple[Any, ...] = ()
    # An agent's call-back: AMI Originate rings the agent's member interface, then runs this
    # dialplan context with the citizen's number as the extension (asterisk_conf: agent-phones).
    agent_callback_context: str = "agent-phones"
    agent_callback_caller_id: str = ""
    # After-call work: an agent with the desk open is paused (reason "wrapup", shown as wrap-up)
    # when their answered call ends, until they end it or this many seconds pass; 0 = off
    # (only the queue's own wrapuptime applies, as for agents without the desk).
    agent_wrapup_seconds: float = 30.0
    # Browser sessions (HttpOnly cookie) last this long; one-time login links expire sooner.
    session_hours: float = 12.0
    login_link_minutes: float = 60.0
    # The address people open the pages at, for the login links the CLI prints
    # (default: http://<http_host>:<http_port>).
    public_url: str = ""
    # ---- several instances, one PostgreSQL (callcenter.cluster) ----
    # "single": this instance ingests every configured Asterisk server. "cluster": each server
    # is ingested by whichever instance holds its advisory lock; the others follow its stream.
    ingest_mode: str = "single"
    # NOTIFY channel of the shared stream and namespace of the locks: one per deployment.
    cluster_channel: str = "callcenter_ami"
    # ---- reconciliation with Asterisk's own records (callcenter.reconciler) ----
    # After every AMI reconnect and at start, calls the service could not see are taken from
    # Asterisk's queue_log and CEL: "pgsql" reads the tables Asterisk writes into this
    # database (res_config_pgsql, cel_pgsql), "files" reads co-located files, "off" does not.
    reconcile: str = "off"
    # Tables, or files, to read ("{server}" is replaced by the Asterisk server's name).
    reconcile_queue_log_table: str = "queue_log"
    reconcile_cel_table: str = "cel"
    reconcile_queue_log_file: str = "/var/log/asterisk/queue_log"
    reconcile_cel_file: str = "/var/log/asterisk/cel-custom/Master.csv"
    # How long a call that crossed a gap waits for Asterisk's records before it is logged as
    # the service saw it, and how far back the first reconciliation after a start looks.
    reconcile_hold_seconds: float = 15.0
    reconcile_lookback_seconds: float = 86_400.0
    # ---- security (docs/security.md) ----
    # An agent token reads the caller and tickets of the call at its own position, and of the
    # calls that agent answered or closed in the last this many hours; nothing else.
    agent_recent_hours: float = 12.0
    # Open calls kept per Asterisk server; beyond it the oldest is closed as reconstructed (a
    # PBX that never sends hang-ups cannot exhaust memory).
    max_open_calls_per_server: int = 5000
    # HTTP: seconds to send a request's headers (from connecting, or after the last answer on
    # a kept-alive connection), and the most connections served at once.
    http_header_timeout: float = 10.0
    http_max_connections: int = 1000


_ENV_PREFIX = "CALLCENTER_"


def _coerce(name: str, raw: Any, template: Any) -> Any:
    """Converts a TOML or environment value to the type of the default ``template``."""
    try:
        if isinstance(template, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if isinstance(template, int):
            return int(raw)
        if isinstance(template, float):
            return float(raw)
        if isinstance(template, tuple):
            # TOML arrays as they are; in the environment a JSON array or "a,b,c".
            if isinstance(raw, list | tuple):
                return tuple(raw)
            text = str(raw).strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(item.strip() for item in text.split(",") if item.strip())
        if isinstance(template, Mapping):
            if isinstance(raw, Mapping):
                return {str(k): float(v) for k, v in raw.items()}
            # "genel=20,sosyal-yardim=30,*=20"
            pairs = (item.split("=", 1) for item in str(raw).split(",") if item.strip())
            return {k.strip(): float(v) for k, v in pairs}
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: cannot use {raw!r} ({exc})") from None


def _servers_from(raw: Any) -> tuple[AsteriskServer, ...]:
    """Builds the Asterisk server list from TOML ``[[asterisk]]`` tables."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("setting 'asterisk': expected a list of [[asterisk]] tables")
    servers = []
    defaults = AsteriskServer()
    for i, table in enumerate(raw):
        if not isinstance(table, Mapping):
            raise ConfigError(f"setting 'asterisk[{i}]': expected a table")
        values = {}
        for f in fields(AsteriskServer):
            if f.name in table:
                values[f.name] = _coerce(
                    f"asterisk[{i}].{f.name}", table[f.name], getattr(defaults, f.name)
                )
        unknown = set(table) - {f.name for f in fields(AsteriskServer)}
        if unknown:
            raise ConfigError(f"setting 'asterisk[{i}]': unknown keys {sorted(unknown)}")
        servers.append(AsteriskServer(**values))
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise ConfigError(f"setting 'asterisk': server names must be unique, got {names}")
    return tuple(servers)


def _servers_from_env(
    env: Mapping[str, str], base: tuple[AsteriskServer, ...]
) -> tuple[AsteriskServer, ...]:
    """Applies ``CALLCENTER_AMI_*`` (the first server) and ``CALLCENTER_AMI_SERVERS``.

    ``CALLCENTER_AMI_SERVERS`` lists several servers as
    ``name=user:secret@host:port,name2=user:secret@host2:port``.
    """
    spec = env.get(_ENV_PREFIX + "AMI_SERVERS")
    if spec:
        servers = []
        for item in spec.split(","):
            try:
                name, rest = item.strip().split("=", 1)
                cred, addr = rest.rsplit("@", 1)
                user, secret = cred.split(":", 1)
                host, _, port = addr.partition(":")
                servers.append(
                    AsteriskServer(
                        name=name, host=host, port=int(port or 5038), username=user, secret=secret
                    )
                )
            except ValueError:
                raise ConfigError(
                    "setting CALLCENTER_AMI_SERVERS: expected name=user:secret@host:port[,...]"
                ) from None
        return tuple(servers)
    first = base[0]
    changes: dict[str, Any] = {}
    for f in fields(AsteriskServer):
        key = _ENV_PREFIX + "AMI_" + f.name.upper()
        if key in env:
            changes[f.name] = _coerce(key, env[key], getattr(first, f.name))
    secret_file = env.get(_ENV_PREFIX + "AMI_SECRET_FILE")
    if secret_file:
        changes["secret"] = _read_secret_file(secret_file)
    if not changes:
        return base
    return (replace(first, **changes), *base[1:])


def _read_secret_file(path: str) -> str:
    """Reads a secret from a file (Docker/Kubernetes secrets), stripping the newline."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {path}: {exc}") from None


def load_settings(path: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Builds the settings from defaults, the TOML file and the environment."""
    env = os.environ if env is None else env
    path = path or env.get(_ENV_PREFIX + "CONFIG")
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    defaults = Settings()
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"config file {path}: unknown settings {sorted(unknown)}")
    for f in fields(Settings):
        if f.name == "asterisk":
            if "asterisk" in data:
                values["asterisk"] = _servers_from(data["asterisk"])
            continue
        template = getattr(defaults, f.name)
        if f.name in data:
            values[f.name] = _coerce(f.name, data[f.name], template)
        key = "DATABASE_URL" if f.name == "database_url" else _ENV_PREFIX + f.name.upper()
        if key in env:
            values[f.name] = _coerce(key, env[key], template)
    settings = replace(defaults, **values)
    settings = replace(settings, asterisk=_servers_from_env(env, settings.asterisk))
    if settings.log_format not in {"console", "json"}:
        raise ConfigError(
            f"setting 'log_format': expected console or json, got {settings.log_format!r}"
        )
    scheme = settings.database_url.split("://", 1)[0].lower()
    if scheme not in {"postgresql", "postgres"}:
        # Only the scheme is quoted: the rest of the URL may carry a password.
        raise ConfigError(
            f"setting 'database_url' (DATABASE_URL): expected a postgresql:// URL, "
            f"got {scheme + '://…' if '://' in settings.database_url else 'no URL scheme'}"
        )
    if settings.log_level.lower() not in _LOG_LEVELS:
        raise ConfigError(
            f"setting 'log_level': expected one of {', '.join(_LOG_LEVELS)}, "
            f"got {settings.log_level!r}"
        )
    if any(not isinstance(w, Mapping) for w in settings.webhooks):
        # A lone JSON object becomes a tuple of its keys; say what was meant.
        raise ConfigError(
            "setting 'webhooks': expected a list of tables [{name, url, secrets, events}, …]"
            + (" (got one object: wrap it in [ ])" if "webhooks" in _raw_object_keys(env) else "")
        )
    if settings.ingest_mode not in {"single", "cluster"}:
        raise ConfigError(
            f"setting 'ingest_mode': expected single or cluster, got {settings.ingest_mode!r}"
        )
    if settings.reconcile not in {"off", "pgsql", "files"}:
        raise ConfigError(
            f"setting 'reconcile': expected off, pgsql or files, got {settings.reconcile!r}"
        )
    for name in ("reconcile_queue_log_table", "reconcile_cel_table"):
        table = getattr(settings, name).replace("{server}", "x")
        if not table.replace("_", "").isalnum() or not table.isascii() or table[0].isdigit():
            raise ConfigError(f"setting {name!r}: expected a plain table name, got {table!r}")
    _check_alerts(settings)
    if not 0 < len(settings.cluster_channel.encode()) < 64:
        raise ConfigError("setting 'cluster_channel': expected 1 to 63 bytes (a PostgreSQL name)")
    return settings


_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _raw_object_keys(env: Mapping[str, str]) -> set[str]:
    """Names of list settings whose environment value is a JSON object rather than a list."""
    raw = env.get(_ENV_PREFIX + "WEBHOOKS", "").strip()
    return {"webhooks"} if raw.startswith("{") else set()


def _check_alerts(settings: Settings) -> None:
    """Refuses wallboard thresholds whose amber would come after their red."""
    for queue in {*settings.wallboard_sl_amber, *settings.wallboard_sl_red}:
        amber, red = (
            per_queue(settings.wallboard_sl_amber, queue),
            per_queue(settings.wallboard_sl_red, queue),
        )
        if amber < red:
            raise ConfigError(
                f"setting 'wallboard_sl_amber' for {queue!r}: {amber:g} % is below the red "
                f"threshold {red:g} % (amber warns first: it must be higher)"
            )
    for queue in {*settings.wallboard_wait_amber, *settings.wallboard_wait_red}:
        amber, red = (
            per_queue(settings.wallboard_wait_amber, queue),
            per_queue(settings.wallboard_wait_red, queue),
        )
        if amber > red:
            raise ConfigError(
                f"setting 'wallboard_wait_amber' for {queue!r}: {amber:g} s is above the red "
                f"threshold {red:g} s (amber warns first: it must be lower)"
            )


def per_queue(table: Mapping[str, float], queue: str) -> float:
    """Looks up a per-queue value, falling back to the ``*`` default."""
    return table.get(queue, table.get("*", 0.0))
