"""The list actions' answers: QueueStatus, QueueSummary, CoreShowChannels, Status.

Each returns the whole answer as one string (start response, items carrying the
ActionID, the ``…Complete`` event), in the layouts of the recordings.
"""

from __future__ import annotations

from callcenter.sim import wire
from callcenter.sim.channels import Channel
from callcenter.sim.engine import Pbx
from callcenter.sim.members import NOT_INUSE


def queue_status(pbx: Pbx, aid: str | None, queue: str = "", member: str = "") -> str:
    """QueueStatus: QueueParams, QueueMember and QueueEntry per queue (ActionID last)."""
    now = pbx.now_epoch()
    items: list[str] = []
    for q in reversed(pbx.queues.values()):  # app_queue's container order in the recordings
        if queue and q.name != queue:
            continue
        c = q.config
        params = wire.lines(
            [
                ("Queue", q.name),
                ("Max", c.maxlen),
                ("Strategy", c.strategy),
                ("Calls", len(q.entries)),
                ("Holdtime", q.holdtime),
                ("TalkTime", q.talktime),
                ("Completed", q.completed),
                ("Abandoned", q.abandoned),
                ("ServiceLevel", c.servicelevel),
                ("ServicelevelPerf", q.sl_perf()),
                ("ServicelevelPerf2", q.sl_perf()),
                ("Weight", c.weight),
            ]
        )
        items.append(wire.list_item("QueueParams", params, aid))
        for m in q.members:
            if member and member not in (m.interface, m.name):
                continue
            items.append(wire.list_item("QueueMember", m.list_body(), aid))
        for pos, entry in enumerate(q.entries, 1):
            ch = entry.call.c1
            body = wire.lines(
                [
                    ("Queue", q.name),
                    ("Position", pos),
                    ("Channel", ch.name),
                    ("Uniqueid", ch.uniqueid),
                    ("CallerIDNum", ch.cid_num),
                    ("CallerIDName", ch.cid_name),
                    ("ConnectedLineNum", ch.conn_num),
                    ("ConnectedLineName", ch.conn_name),
                    ("Wait", int(now) - int(entry.joined)),
                    ("Priority", 0),
                ]
            )
            items.append(wire.list_item("QueueEntry", body, aid))
    return (
        wire.list_start(aid, "Queue status will follow")
        + "".join(items)
        + wire.list_complete("QueueStatusComplete", aid, len(items))
    )


def queue_summary(pbx: Pbx, aid: str | None, queue: str = "") -> str:
    """QueueSummary: one summary event per queue."""
    now = pbx.now_epoch()
    items: list[str] = []
    for q in reversed(pbx.queues.values()):
        if queue and q.name != queue:
            continue
        available = sum(
            1 for m in q.members if not m.paused and m.device.status == NOT_INUSE and m.free(now)
        )
        longest = max((int(now) - int(e.joined) for e in q.entries), default=0)
        body = wire.lines(
            [
                ("Queue", q.name),
                ("LoggedIn", len(q.members)),
                ("Available", available),
                ("Callers", len(q.entries)),
                ("HoldTime", q.holdtime),
                ("TalkTime", q.talktime),
                ("LongestHoldTime", longest),
            ]
        )
        items.append(wire.list_item("QueueSummary", body, aid))
    return (
        wire.list_start(aid, "Queue summary will follow")
        + "".join(items)
        + wire.list_complete("QueueSummaryComplete", aid, len(items))
    )


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def core_show_channels(pbx: Pbx, aid: str | None) -> str:
    """CoreShowChannels: one CoreShowChannel per live channel (ActionID second)."""
    now = pbx.now_epoch()
    items = []
    for ch in reversed(pbx.channels.values()):
        body = (
            ch.block()
            + f"Application: {ch.app}\r\nApplicationData: {ch.appdata}\r\n"
            + f"Duration: {_duration(now - ch.created)}\r\nBridgeId: {ch.bridge}\r\n"
        )
        items.append(wire.list_item("CoreShowChannel", body, aid, id_first=True))
    return (
        wire.list_start(aid, "Channels will follow")
        + "".join(items)
        + wire.list_complete("CoreShowChannelsComplete", aid, len(items))
    )


def _status_item(ch: Channel, now: float, aid: str | None) -> str:
    body = ch.block() + wire.lines(
        [
            ("Type", "Local"),
            ("DNID", ""),
            ("EffectiveConnectedLineNum", ch.conn_num),
            ("EffectiveConnectedLineName", ch.conn_name),
            ("TimeToHangup", 0),
            ("BridgeID", ch.bridge),
            ("Application", ch.app),
            ("Data", ch.appdata),
            ("Nativeformats", "(ulaw)"),
            ("Readformat", "ulaw"),
            ("Readtrans", ""),
            ("Writeformat", "ulaw"),
            ("Writetrans", ""),
            ("Callgroup", 0),
            ("Pickupgroup", 0),
            ("Seconds", int(now - ch.created)),
        ]
    )
    return f"Event: Status\r\nPrivilege: Call\r\n{body}" + (
        f"ActionID: {aid}\r\n\r\n" if aid else "\r\n"
    )


def status(pbx: Pbx, aid: str | None, channel: str = "") -> str:
    """Status: every channel (or the one named), then StatusComplete with ``Items``."""
    now = pbx.now_epoch()
    if channel and channel not in pbx.channels:
        return wire.error(aid, "No such channel")
    chans = [pbx.channels[channel]] if channel else list(pbx.channels.values())
    items = [_status_item(ch, now, aid) for ch in chans]
    return (
        wire.list_start(aid, "Channel status will follow")
        + "".join(items)
        + wire.list_complete("StatusComplete", aid, len(items), ("Items", len(items)))
    )
