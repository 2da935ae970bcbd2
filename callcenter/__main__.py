"""Command line: ``python -m callcenter COMMAND`` (or the ``callcenter`` script).

Each command lives in ``callcenter/commands/<name>.py`` with ``add_arguments(parser)``
and ``main(args) -> int``; commands whose module is not installed are not listed.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from callcenter.config import ConfigError

COMMANDS = {
    "run": "run the service: AMI ingestion, PostgreSQL, HTTP",
    "demo": "run everything on embedded defaults with a simulated Asterisk",
    "replay": "replay a recorded AMI trace and print one JSON object per finished call",
    "record": "record live AMI traffic to a trace file",
    "migrate": "apply the database migrations",
    "sim": "run the simulated Asterisk (load generator)",
    "report": "print the KPI report for a period",
    "token": "create or list API tokens",
    "retention": "anonymise or delete calls older than retention_days (KVKK)",
    "prompts": "build the IVR prompts (Turkish and English) as Asterisk sound files",
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    """The argument parser with every installed command."""
    parser = argparse.ArgumentParser(prog="callcenter", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML settings file (also CALLCENTER_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules: dict[str, object] = {}
    for name, help_text in COMMANDS.items():
        try:
            module = importlib.import_module(f"callcenter.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"callcenter.commands.{name}":
                raise
            continue
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
        modules[name] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    """Runs one command and returns its exit status."""
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    module = modules[args.command]
    try:
        return int(module.main(args))  # type: ignore[attr-defined]
    except ConfigError as exc:  # one clear line for every command, not a traceback
        print(f"callcenter: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
