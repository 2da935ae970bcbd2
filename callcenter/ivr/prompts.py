"""Sound names the IVR code plays by itself (the menu file names the rest).

Every name here must be listed in the menu file's ``[prompts]`` table with its Turkish and
English text: that table is the recording script the municipality's voice talent reads, and
the menu loader refuses a file that leaves one of these out. Neighbourhood names are recorded
from the table-and-chair flow's ``neighbourhoods`` table (``callcenter/mahalle-NN``).
"""

from __future__ import annotations

# What the menu engine plays around the menus; the menu file maps these roles to sounds.
ROLES = ("invalid", "timeout", "goodbye", "transfer", "after_flow", "technical_problem")

STATUS_ENTER = "callcenter/status-enter-reference"
STATUS_NOT_FOUND = "callcenter/status-not-found"
STATUS_INTRO = "callcenter/status-intro"

TC_ENTER_DATE = "callcenter/ms-enter-date"
TC_INVALID_DATE = "callcenter/ms-invalid-date"
TC_ENTER_NEIGHBOURHOOD = "callcenter/ms-enter-neighbourhood"
TC_INVALID_NEIGHBOURHOOD = "callcenter/ms-invalid-neighbourhood"
TC_READBACK = "callcenter/ms-readback"
TC_CONFIRM = "callcenter/ms-confirm"
TC_OPENED = "callcenter/ms-ticket-opened"
TC_REPEAT = "callcenter/ms-repeat-reference"

SURVEY_INTRO = "callcenter/survey-intro"
SURVEY_CALLBACK_INTRO = "callcenter/survey-callback-intro"
SURVEY_Q1 = "callcenter/survey-q1"
SURVEY_Q2 = "callcenter/survey-q2"
SURVEY_THANKS = "callcenter/survey-thanks"


def month(number: int) -> str:
    """The sound that names a month (1-12) in a read-back date."""
    return f"callcenter/month-{number:02d}"


def neighbourhood(code: str) -> str:
    """The sound that names a neighbourhood by its two-digit keypad code."""
    return f"callcenter/mahalle-{code}"


FLOW_PROMPTS: dict[str, tuple[str, ...]] = {
    "request_status": (STATUS_ENTER, STATUS_NOT_FOUND, STATUS_INTRO),
    "table_chair": (
        TC_ENTER_DATE,
        TC_INVALID_DATE,
        TC_ENTER_NEIGHBOURHOOD,
        TC_INVALID_NEIGHBOURHOOD,
        TC_READBACK,
        TC_CONFIRM,
        TC_OPENED,
        TC_REPEAT,
        *(month(m) for m in range(1, 13)),
    ),
    "survey": (SURVEY_INTRO, SURVEY_CALLBACK_INTRO, SURVEY_Q1, SURVEY_Q2, SURVEY_THANKS),
}
