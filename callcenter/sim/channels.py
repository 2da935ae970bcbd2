"""A simulated channel and the standard header blocks Asterisk renders from it."""

from __future__ import annotations

from dataclasses import dataclass, field

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
UNKNOWN = "<unknown>"
_SNAPSHOT = frozenset(
    {
        "name",
        "state",
        "cid_num",
        "cid_name",
        "conn_num",
        "conn_name",
        "context",
        "exten",
        "priority",
        "uniqueid",
        "linkedid",
    }
)
CAUSE_TXT = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "No user responding"}


@dataclass(eq=False, slots=True)
class Channel:
    """One channel's snapshot fields, kept current as the simulated dialplan runs."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    created: float  # epoch seconds
    priority: int = 1
    state: int = 0
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    conn_num: str = UNKNOWN
    conn_name: str = UNKNOWN
    app: str = ""
    appdata: str = ""
    bridge: str = ""
    answered: float | None = None
    hungup: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    _block: str | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        # The unprefixed block is rendered for most events of a channel; it is cached and
        # dropped whenever a field it shows changes.
        object.__setattr__(self, name, value)
        if name in _SNAPSHOT:
            object.__setattr__(self, "_block", None)

    def block(self, prefix: str = "") -> str:
        """The channel snapshot headers (Channel … Linkedid), optionally prefixed (Dest…)."""
        if not prefix:
            cached = self._block
            if cached is None:
                cached = self._render("")
                object.__setattr__(self, "_block", cached)
            return cached
        return self._render(prefix)

    def _render(self, prefix: str) -> str:
        p = prefix
        return (
            f"{p}Channel: {self.name}\r\n"
            f"{p}ChannelState: {self.state}\r\n"
            f"{p}ChannelStateDesc: {STATE_DESC[self.state]}\r\n"
            f"{p}CallerIDNum: {self.cid_num}\r\n"
            f"{p}CallerIDName: {self.cid_name}\r\n"
            f"{p}ConnectedLineNum: {self.conn_num}\r\n"
            f"{p}ConnectedLineName: {self.conn_name}\r\n"
            f"{p}Language: en\r\n"
            f"{p}AccountCode: \r\n"
            f"{p}Context: {self.context}\r\n"
            f"{p}Exten: {self.exten}\r\n"
            f"{p}Priority: {self.priority}\r\n"
            f"{p}Uniqueid: {self.uniqueid}\r\n"
            f"{p}Linkedid: {self.linkedid}\r\n"
        )

    def goto(self, context: str, exten: str, priority: int) -> None:
        """Moves the channel to a dialplan location (as Goto/Redirect do)."""
        self.context, self.exten, self.priority = context, exten, priority

    @property
    def callerid(self) -> str:
        """The caller id as CDRs print it: ``"Name" <number>``."""
        return f'"{self.cid_name}" <{self.cid_num}>'


def local_block(one: Channel, two: Channel, context: str, exten: str, optimize: bool) -> str:
    """The body of a LocalBridge event for a Local pair."""
    return (
        one.block("LocalOne")
        + two.block("LocalTwo")
        + f"Context: {context}\r\nExten: {exten}\r\n"
        + f"LocalOptimization: {'Yes' if optimize else 'No'}\r\n"
    )


@dataclass(eq=False, slots=True)
class Bridge:
    """A basic two-party bridge as app_queue creates it for a connected call."""

    uniqueid: str
    members: list[Channel] = field(default_factory=list)

    def block(self) -> str:
        """The bridge snapshot headers (BridgeUniqueid … BridgeVideoSourceMode)."""
        return (
            f"BridgeUniqueid: {self.uniqueid}\r\n"
            "BridgeType: basic\r\n"
            "BridgeTechnology: simple_bridge\r\n"
            "BridgeCreator: <unknown>\r\n"
            "BridgeName: <unknown>\r\n"
            f"BridgeNumChannels: {len(self.members)}\r\n"
            "BridgeVideoSourceMode: none\r\n"
        )
