"""Identifiers as Asterisk makes them: uniqueids, Local-channel names, bridge ids.

* ``Uniqueid`` is ``<epoch seconds when the channel was created>.<process-wide counter>``,
  one counter for every channel; compare them as strings, never as floats.
* ``Linkedid`` is the uniqueid of the first channel of the call (the caller's ``;1``) and
  is copied to every channel the call creates, agent Local channels included.
* A Local channel pair is ``Local/<exten>@<context>-<8 hex digits>;1`` and ``;2``; the hex
  counter is process-wide too, one step per pair.
"""

from __future__ import annotations

import random
import uuid


class Ids:
    """Hands out uniqueids, Local-channel suffixes and bridge ids in Asterisk's formats."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._channels = 0
        self._locals = 0

    def uniqueid(self, epoch: float) -> str:
        """The next channel uniqueid, stamped with the (simulated) creation second."""
        n = self._channels
        self._channels += 1
        return f"{int(epoch)}.{n}"

    def local_pair(self, exten: str, context: str) -> tuple[str, str]:
        """Names of the next Local channel pair, ``(…;1, …;2)``."""
        n = self._locals
        self._locals += 1
        base = f"Local/{exten}@{context}-{n:08x}"
        return f"{base};1", f"{base};2"

    def bridge(self) -> str:
        """A bridge uniqueid: a UUID4 drawn from the seeded generator, so runs repeat."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def session(self) -> str:
        """A manager session id as SuccessfulAuth shows it (a heap address in Asterisk)."""
        return f"0x7f{self._rng.getrandbits(40):010x}"
