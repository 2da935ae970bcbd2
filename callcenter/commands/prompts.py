"""``callcenter prompts build --out DIR``: every IVR prompt in every language, for Asterisk."""

from __future__ import annotations

import argparse

from callcenter.config import load_settings
from callcenter.ivr import soundbuild


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = sub.add_parser(
        "build",
        help="write DIR/<lang>/callcenter/*.wav (8 kHz mono 16-bit) with espeak-ng and sox",
        description=soundbuild.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    soundbuild.add_arguments(build)


def main(args: argparse.Namespace) -> int:
    """Builds the prompts for the configured menu (or --menu)."""
    menu = args.menu or load_settings(args.config).ivr_menu or None
    return soundbuild.run(args, menu)
