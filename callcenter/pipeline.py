"""The one ordered path every AMI message takes: filter, parse, track.

Bad input (garbage, unknown events, events missing vital headers, a tracker failure) is
logged, counted and skipped; nothing raises out of ``feed_*``.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from callcenter import events
from callcenter.calls import Tracker
from callcenter.model import Anomaly, Effect

log = structlog.get_logger(__name__)


class Pipeline:
    """Turns AMI messages from one or more servers into tracker effects, in order."""

    def __init__(self, tracker: Tracker | None = None) -> None:
        self.tracker = tracker or Tracker()
        self.counters: dict[str, int] = {
            "messages": 0,
            "dropped": 0,
            "events": 0,
            "unknown_events": 0,
            "bad_events": 0,
            "garbage": 0,
            "tracker_errors": 0,
        }
        self._unknown_seen: set[str] = set()
        self._clock_offset: dict[str, float] = {}  # server -> its Timestamp minus our clock

    def feed_text(self, server: str, text: str, received_at: float) -> list[Effect]:
        """Feeds one raw message (``Key: Value`` lines); drops noise before parsing."""
        self.counters["messages"] += 1
        if events.is_noise(text):
            self.counters["dropped"] += 1
            return []
        return self._feed(server, events.parse_message(text), received_at)

    def feed_headers(
        self, server: str, headers: Mapping[str, str], received_at: float
    ) -> list[Effect]:
        """Feeds one message that the adapter has already split into headers."""
        self.counters["messages"] += 1
        return self._feed(server, headers, received_at)

    def _feed(self, server: str, headers: Mapping[str, str], received_at: float) -> list[Effect]:
        if "_garbage" in headers or not ("Event" in headers or "Response" in headers):
            self.counters["garbage"] += 1
            log.warning("ami_garbage", server=server, line=str(headers.get("_garbage", ""))[:80])
            if "Event" not in headers:
                return []
        received_at = self._on_pbx_clock(server, headers, received_at)
        try:
            event = events.to_event(headers, received_at, server)
        except KeyError as exc:
            self.counters["unknown_events"] += 1
            name = str(exc.args[0])
            if name not in self._unknown_seen and len(self._unknown_seen) < 1000:
                self._unknown_seen.add(name)
                log.info("ami_unknown_event", server=server, ami_event=name)
            return []
        except (events.EventError, ValueError, TypeError) as exc:
            self.counters["bad_events"] += 1
            log.warning(
                "ami_bad_event", server=server, ami_event=headers.get("Event"), error=str(exc)
            )
            return []
        if event is None:
            self.counters["dropped"] += 1
            return []
        self.counters["events"] += 1
        try:
            effects = self.tracker.feed(event)
        except Exception:  # a tracker bug must not stop the stream: log, count, go on
            self.counters["tracker_errors"] += 1
            log.exception("tracker_error", server=server, ami_event=type(event).__name__)
            return []
        for effect in effects:
            if isinstance(effect, Anomaly):
                log.info(
                    "call_anomaly",
                    kind=effect.kind,
                    detail=effect.detail,
                    server=effect.server,
                    linkedid=effect.linkedid,
                )
        return effects

    def _on_pbx_clock(self, server: str, headers: Mapping[str, str], received_at: float) -> float:
        """The receive time moved onto the PBX's clock, for messages without a Timestamp.

        Stamped events give the offset between the PBX's clock and ours. The adapter's own
        events (link down, resync) and the resync's list answers carry no Timestamp: without
        this, a call closed by a resync would end on our clock after starting on the PBX's.
        """
        stamp = headers.get("Timestamp")
        if not stamp:
            return received_at + self._clock_offset.get(server, 0.0)
        try:
            self._clock_offset[server] = float(stamp) - received_at
        except ValueError:
            pass
        return received_at
