"""The simulated IVR menu: the reference dialplan's [ivr] plus the municipality's services.

Keys 1, 2 and 9 are exactly the recorded dialplan's (social-aid queue, self-service status
lookup, repeat); the other keys route the remaining service categories of MISSION.md to a
queue and only differ in the ``IVRCHOICE`` they leave on the call. It is the default (the
recorded traces ran it); given an AGI address the simulator runs IVR-line calls through the
service's FastAGI IVR instead (:mod:`callcenter.sim.agi_ivr`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IvrOption:
    """What one key of the menu does."""

    kind: str  # queue | selfservice | repeat
    category: str  # the service category (Turkish, as the municipality names it)
    queue: str = ""
    result: str = ""  # SELFSERVICE_RESULT of a self-service flow
    noop: str = ""  # the NoOp text the dialplan logs


MENU: dict[str, IvrOption] = {
    "1": IvrOption(
        "queue", "Sosyal yardım", "sosyal-yardim", noop="IVR secim 1: sosyal-yardim kuyrugu"
    ),
    "2": IvrOption(
        "selfservice",
        "Başvuru durumu",
        result="basvuru-durumu-okundu",
        noop="IVR secim 2: self-service",
    ),
    "3": IvrOption("queue", "Masa-sandalye", "genel", noop="IVR secim 3: masa-sandalye"),
    "4": IvrOption("queue", "Depremzede başvuruları", "sosyal-yardim", noop="IVR secim 4: deprem"),
    "5": IvrOption("queue", "Çözüm ofisleri", "genel", noop="IVR secim 5: cozum ofisleri"),
    "6": IvrOption("queue", "Şikâyet ve öneri", "genel", noop="IVR secim 6: sikayet-oneri"),
    "7": IvrOption("queue", "CİMER / Açık Kapı", "genel", noop="IVR secim 7: cimer-acikkapi"),
    "8": IvrOption("queue", "Muhtarlık işleri", "genel", noop="IVR secim 8: muhtarlik"),
    "0": IvrOption("queue", "Bilgi ve yönlendirme", "genel", noop="IVR secim 0: operator"),
    "9": IvrOption("repeat", "", noop="IVR secim 9: menuyu tekrarla"),
}

# Key per category, for callers whose plan names a category rather than a key.
KEY_FOR_CATEGORY = {opt.category: key for key, opt in MENU.items() if opt.category}
