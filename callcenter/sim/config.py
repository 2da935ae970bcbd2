"""What the simulated Asterisk is configured with: queues, members, dialplan timings.

The defaults are the configuration the recorded traces ran with
(``ami-traces/asterisk_conf_used``): queues ``genel`` and ``sosyal-yardim`` built on one
template (rrmemory, member timeout 15 s, retry 2 s, wrap-up 3 s, service level 20 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MemberConfig:
    """A static queue member: an agent's phone ``Local/<ext>@agents/n`` (state ``Custom:<ext>``)."""

    ext: str
    name: str
    penalty: int = 0

    @property
    def interface(self) -> str:
        """The member interface app_queue dials."""
        return f"Local/{self.ext}@agents/n"


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """One queue of queues.conf."""

    name: str
    maxlen: int = 0  # 0 = unlimited
    members: tuple[MemberConfig, ...] = ()
    strategy: str = "rrmemory"
    timeout: float = 15.0  # seconds a member rings before RINGNOANSWER
    retry: float = 2.0  # pause between ring attempts
    wrapuptime: float = 3.0
    servicelevel: int = 20
    weight: int = 0


ZEYNEP = MemberConfig("1001", "Zeynep Kaya")
MEHMET = MemberConfig("1002", "Mehmet Öztürk")
ELIF = MemberConfig("1003", "Elif Şahin")
BURAK = MemberConfig("1004", "Burak Çelik")

GENEL_DID = "4441000"  # the direct line: straight into queue genel
IVR_DID = "4442000"  # the IVR line


def recorded_queues() -> tuple[QueueConfig, ...]:
    """The two queues of the recordings, with their four static agents."""
    return (
        QueueConfig("genel", maxlen=100, members=(ZEYNEP, MEHMET, ELIF)),
        QueueConfig("sosyal-yardim", maxlen=50, members=(ELIF, BURAK)),
    )


@dataclass(slots=True)
class PbxConfig:
    """Everything the simulated PBX needs to know before the first call."""

    queues: tuple[QueueConfig, ...] = field(default_factory=recorded_queues)
    timestampevents: bool = True
    welcome_s: float = 1.003  # Playback(callcenter/welcome), as long as recorded
    menu_s: float = 2.0  # Background(callcenter/ivr-menu) before WaitExten
    waitexten_s: float = 5.0
    selfservice_s: float = 1.5  # Playback(callcenter/selfservice)
    # What a real Asterisk adds to each timed step, measured on the recordings; without it
    # near-simultaneous steps of different calls would come out in the wrong order.
    answer_latency: float = 0.006  # ring delay -> DialEnd ANSWER
    talk_latency: float = 0.014  # caller's talk Wait (after the redirect) -> its Hangup
    agent_talk_latency: float = 0.004  # agent's talk Wait -> its Hangup
    timeout_latency: float = 0.006  # member ring timeout / Queue() timeout
    patience_latency: float = 0.007  # caller's patience Wait -> "gives up"
    # Dialplan globals ([globals] of the reference extensions.conf); Setvar changes them.
    globals: dict[str, str] = field(
        default_factory=lambda: {
            "RD_DEFAULT": "3",
            "RD_MIN": "1",
            "RD_MAX": "4",
            "TALK": "8",
            "HANGUPBY": "caller",
            "PATIENCE": "600",
            "IVRDELAY": "2",
        }
    )
