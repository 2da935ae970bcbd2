"""structlog set-up, configured once at start-up; phone numbers are masked in every log line.

Both structlog loggers and standard-library loggers (panoramisk, aiohttp, asyncpg, asyncio) go
through the same processor chain and the same renderer, so the masking cannot be bypassed by a
library that logs with :mod:`logging`.

Masking rule (:func:`mask_number`): a run of 7 or more digits (any script), optionally preceded by
``+``, is a phone number unless it is glued to a word (``ext05321234567``, ``callers-00000012``,
``0000000a`` – channel suffixes are hex), or is part of a decimal number (``1718030610.10`` –
Uniqueid/Linkedid and timestamps must stay readable for correlation). Of the digits, the first
``k`` and the last ``k`` are kept and the middle is replaced by ``***``, with
``k = min(4, (n - 3) // 2)`` so that at least three digits are always hidden:
``05321234567`` -> ``0532***4567``, ``+905321234567`` -> ``+9053***4567``,
``2123456`` -> ``21***56``. A run that is a size is left alone: followed by a unit
(``1048576 bytes``, ``5 MiB``) or preceded by a size word (``bytes=1048576``, ``limit: 1048576``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

__all__ = ["configure_logging", "mask_number", "mask_numbers_processor", "mask_value"]

# Lookbehind: not glued to a word character, a dot (fraction part) or a dash (channel suffix).
# Lookahead: not followed by a word character (hex suffix) or by ".<digit>" (decimal number).
# Unicode digits count (a number typed as "٠٥٣٢١٢٣٤٥٦٧" is still a number).
_PHONE = re.compile(r"(?<![\w.\-])(\+?)(\d{7,})(?![\w]|\.\d)")
# A digit run that is a size, not a number: "1048576 bytes", "bytes=1048576", "size: 52428800".
_UNIT_AFTER = re.compile(r"\s?(?:bytes?|[KMG]i?B|B|octets)\b", re.IGNORECASE)
_SIZE_BEFORE = re.compile(
    r"(?:bytes?|size|length|len|limit|offset|read|written|sent|received)[\s=:]{1,3}$",
    re.IGNORECASE,
)

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# The handler this module installed on the root logger, replaced on reconfiguration.
_handler: logging.Handler | None = None


def _mask_match(match: re.Match[str]) -> str:
    """Masks one matched digit run, keeping the optional leading plus sign."""
    plus, digits = match.group(1), match.group(2)
    text, start, end = match.string, match.start(), match.end()
    if _UNIT_AFTER.match(text, end) or _SIZE_BEFORE.search(text, max(0, start - 16), start):
        return match.group(0)
    keep = min(4, (len(digits) - 3) // 2)
    return f"{plus}{digits[:keep]}***{digits[-keep:]}"


def mask_number(s: str) -> str:
    """Returns ``s`` with every phone-number-like digit run masked (see the module docstring)."""
    return _PHONE.sub(_mask_match, s)


def mask_value(value: Any) -> Any:
    """Masks phone numbers in a string, or recursively in the values of a mapping/list/tuple."""
    if isinstance(value, str):
        return mask_number(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(mask_value(v) for v in value)
    return value


def mask_numbers_processor(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor that masks phone numbers in every value (keys are left alone)."""
    for key, value in event_dict.items():
        # "_record"/"_from_structlog" are ProcessorFormatter internals, not log content.
        if not key.startswith("_"):
            event_dict[key] = mask_value(value)
    return event_dict


def configure_logging(
    fmt: str = "console",
    level: str = "info",
    mask_numbers: bool = True,
    *,
    stream: TextIO | None = None,
) -> None:
    """Configures structlog and the standard-library root logger; call once at start-up."""
    if fmt not in {"console", "json"}:
        raise ValueError(f"log format must be 'console' or 'json', got {fmt!r}")
    try:
        level_no = _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"log level must be one of {sorted(_LEVELS)}, got {level!r}") from None
    out = sys.stderr if stream is None else stream

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Tracebacks become text before masking: exception messages may quote a caller's number,
        # and the console's rich tracebacks would print local variables unmasked.
        structlog.processors.format_exc_info,
    ]
    if mask_numbers:
        shared.append(mask_numbers_processor)

    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        context_class=dict,
        # Not cached, so that structlog.testing.capture_logs() keeps working after start-up.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(out)
    _handler.setFormatter(formatter)
    root.addHandler(_handler)
    root.setLevel(level_no)
