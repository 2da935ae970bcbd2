"""Synthetic call-center days as COPY text, with the report rollups summed along the way.

A day of a metropolitan call center shaped like the municipality's: weekday peaks, ~88 %
answered, mean talk ~72 s, mean wait ~26 s, 23 % of answered calls forwarded as requests,
a few transfers, agents' sessions and pauses. Besides the rows, each day returns its share of
the report rollups (``report_hourly`` etc.) summed the way 0003_reports.sql sums them with
the default thresholds (T = 20 s, short abandons < 5 s): at ten million calls that is far
cheaper than ``report_rebuild()``, and bench/reports.py checks the result against a full scan.
"""

from __future__ import annotations

import bisect
import math
import random
from datetime import UTC, date, datetime
from typing import Any

TZ_OFFSET_S = 3 * 3600  # Europe/Istanbul, no DST since 2016
SL_S, SHORT_S = 20.0, 5.0  # the default thresholds (report_thresholds '*')
WAIT_EDGES = (5, 10, 20, 30, 60, 120, 300)  # callcenter.kpis.WAIT_BIN_EDGES
QUEUES = (
    ("genel", 0.46),
    ("sosyal-yardim", 0.20),
    ("masa-sandalye", 0.08),
    ("cozum-ofisi", 0.10),
    ("deprem", 0.06),
    ("talep-takip", 0.10),
)
# Two Asterisk servers, each with its own queues and agents.
SERVER = {q: "pbx1" if i < 2 else "pbx2" for i, (q, _) in enumerate(QUEUES)}
# Where the few transferred calls go next.
NEXT_QUEUE = {q: QUEUES[(i + 1) % len(QUEUES)][0] for i, (q, _) in enumerate(QUEUES)}
CATEGORIES = (
    ("bilgi", 30),
    ("sosyal-yardim", 20),
    ("masa-sandalye", 6),
    ("temizlik", 12),
    ("zabita", 9),
    ("fen-isleri", 10),
    ("park-bahce", 5),
    ("deprem", 3),
    ("sikayet-oneri", 4),
    ("muhtarlik", 1),
)
PAUSE_REASONS = ("Çay molası", "Yemek", "Eğitim", "Toplantı")
# Share of the day's calls per local hour (08:00-19:00 busy, a trickle at night).
HOURS = (1, 1, 1, 1, 1, 1, 2, 8, 40, 90, 100, 95, 70, 80, 95, 90, 75, 45, 15, 8, 5, 3, 2, 1)
TALK_MU = math.log(72.0) - 0.18  # lognormal talk with sigma 0.6: a mean of 72 s
TABLES = {
    "calls": (
        "server linkedid uniqueid caller_number queue agent outcome hangup_by started_at "
        "entered_at answered_at ended_at wait_s talk_s hold_s"
    ).split(),
    "queue_visits": (
        "server linkedid seq queue agent interface outcome hangup_by entered_at answered_at "
        "left_at ended_at wait_s talk_s hold_s ring_s offers"
    ).split(),
    "tickets": "id reference category channel caller_number agent created_at updated_at".split(),
    "ticket_calls": "ticket_id server linkedid channel attached_at".split(),
    "agent_sessions": "server interface queue started_at agent ended_at static".split(),
    "agent_pauses": "server interface queue started_at agent reason ended_at duration_s".split(),
    "report_request_calls": "server linkedid category bucket queue agent n".split(),
}
# The rollups' value columns, in the order the sums below keep them.
HOURLY = (
    "calls calls_queued calls_wait_s calls_answered calls_talk_s offered answered abandoned "
    "short_abandoned timeouts other_exits answered_in_sl answer_wait_n answer_wait_s talk_n "
    "talk_s hold_s wait_n wait_s wait_max w0 w1 w2 w3 w4 w5 w6 w7"
).split()
AGENT = (
    "calls calls_queued calls_wait_s calls_talk_s answered answered_in_sl answer_wait_n "
    "answer_wait_s talk_n talk_s hold_s rang missed"
).split()
MAX = HOURLY.index("wait_max")
N = "\\N"
Sums = dict[tuple[Any, ...], list[float]]


def _cum(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return [c / total for c in out]


HOUR_CUM = _cum([float(h) for h in HOURS])
QUEUE_CUM = _cum([w for _, w in QUEUES])
CAT_CUM = _cum([float(w) for _, w in CATEGORIES])


def bucket(epoch: float) -> int:
    """The UTC hour (epoch) of a moment, after rounding to the millisecond as written."""
    return round(epoch * 1000) // 3_600_000 * 3600


def merge(into: Sums, part: Sums, max_at: int | None = None) -> None:
    """Adds one day's sums to the totals (``max_at`` is a maximum, not a sum)."""
    for key, values in part.items():
        mine = into.get(key)
        if mine is None:
            into[key] = values
            continue
        for i, v in enumerate(values):
            if i == max_at:
                mine[i] = v if mine[i] is None else (mine[i] if v is None else max(mine[i], v))
            else:
                mine[i] += v


class Day:
    """Renders one local day's rows as COPY text (tab-separated, \\N for NULL) and its sums."""

    def __init__(self, day: date, n_calls: int, seq0: int, agents: int) -> None:
        self.day, self.n, self.seq, self.ticket = day, n_calls, seq0, seq0
        self.rng = random.Random(seq0)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        self.t0 = midnight - TZ_OFFSET_S  # local midnight as epoch
        self.minutes: dict[int, str] = {}  # epoch minute -> "YYYY-MM-DD HH:MM:"
        self.agents = [f"Temsilci {i:03d}" for i in range(agents)]
        per_queue = max(1, agents // len(QUEUES))
        self.queue_agents = {
            q: self.agents[i * per_queue : (i + 1) * per_queue] or self.agents
            for i, (q, _) in enumerate(QUEUES)
        }
        self.rows: dict[str, list[str]] = {t: [] for t in TABLES}
        self.hourly: Sums = {}
        self.agent: Sums = {}
        self.requests: Sums = {}
        self.agent_requests: Sums = {}
        self.missed: str | None = None  # who let the last visit ring out, until it is counted

    def ts(self, epoch: float) -> str:
        """An epoch as timestamptz text in UTC, to the millisecond (as PostgreSQL will read it)."""
        ms = round(epoch * 1000)
        minute, rest = divmod(ms, 60_000)
        prefix = self.minutes.get(minute)
        if prefix is None:
            prefix = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M:")
            self.minutes[minute] = prefix
        return f"{prefix}{rest / 1000:06.3f}+00"

    def render(self) -> tuple[dict[str, bytes], Sums, Sums, Sums, Sums]:
        """Every table's rows for the day, and the day's rollup sums."""
        rng = self.rng
        # In time order, so linkedids grow and the primary keys are appended to, not shuffled.
        starts = sorted(
            round(self.t0 + bisect.bisect(HOUR_CUM, rng.random()) * 3600 + rng.random() * 3600, 3)
            for _ in range(self.n)
        )
        for start in starts:
            self.call(start, QUEUES[bisect.bisect(QUEUE_CUM, rng.random())][0])
        self.staff()
        texts = {t: "".join(rows).encode() for t, rows in self.rows.items()}
        return texts, self.hourly, self.agent, self.requests, self.agent_requests

    # ---- sums ---------------------------------------------------------------------------

    def _h(self, at: float, server: str, queue: str) -> list[Any]:
        key = (bucket(at), server, queue)
        row = self.hourly.get(key)
        if row is None:
            row = self.hourly[key] = [0] * len(HOURLY)
            row[MAX] = None
        return row

    def _a(self, at: float, server: str, queue: str, agent: str) -> list[Any]:
        key = (bucket(at), server, queue, agent)
        row = self.agent.get(key)
        if row is None:
            row = self.agent[key] = [0] * len(AGENT)
        return row

    def _count_call(self, start: float, server: str, queue: str, wait: float | None) -> list[Any]:
        h = self._h(start, server, queue)
        h[0] += 1
        if wait is not None:
            h[1] += 1
            h[2] += wait
        return h

    def _count_wait(self, h: list[Any], wait: float) -> None:
        h[5] += 1  # offered
        h[17] += 1
        h[18] += wait
        h[MAX] = wait if h[MAX] is None or wait > h[MAX] else h[MAX]
        h[20 + bisect.bisect(WAIT_EDGES, wait)] += 1

    # ---- rows ---------------------------------------------------------------------------

    def call(self, start: float, queue: str) -> None:
        """One call: its row, its visits' rows, and maybe a ticket."""
        rng, ts = self.rng, self.ts
        self.seq += 1
        server = SERVER[queue]
        linkedid = f"{int(start)}.{self.seq}"
        number = f"05{rng.randrange(300000000, 599999999)}"
        r = rng.random()
        entered = round(start + 8 + rng.random() * 10, 3)  # IVR and the welcome prompt
        s_start, s_entered = ts(start), ts(entered)
        if r < 0.015:  # self-service in the IVR, no queue
            self._count_call(start, server, "", None)
            self.rows["calls"].append(
                f"{server}\t{linkedid}\t{linkedid}\t{number}\t{N}\t{N}\tivr_only\tcaller\t"
                f"{s_start}\t{N}\t{N}\t{s_entered}\t{N}\t{N}\t0\n"
            )
            return
        if r >= 0.89:
            self.unanswered(server, linkedid, number, queue, start, entered, s_start, s_entered)
            return
        # Most callers are answered quickly, some wait through a busy spell: mean ~24 s.
        mean = 8.0 if rng.random() < 0.7 else 60.0
        wait = round(min(rng.expovariate(1 / mean), 600.0), 3)
        agent = rng.choice(self.queue_agents[queue])
        talk = round(rng.lognormvariate(TALK_MU, 0.6), 3)
        hold = round(rng.uniform(5, 60), 3) if rng.random() < 0.1 else 0.0
        answered = entered + wait
        end = answered + talk
        s_answered, s_end = ts(answered), ts(end)
        self.visit(
            server, linkedid, 1, queue, agent, s_entered, s_answered, s_end, wait, talk, hold
        )
        self._answered(server, queue, agent, entered, wait, talk, hold)
        talk_total = talk
        if rng.random() < 0.03:  # transferred to a second queue
            q2 = NEXT_QUEUE[queue]
            w2 = round(rng.expovariate(1 / 15.0), 3)
            t2 = round(rng.lognormvariate(math.log(60.0), 0.5), 3)
            a2 = rng.choice(self.queue_agents[q2])
            s_a2 = ts(end + w2)
            self.visit(server, linkedid, 2, q2, a2, s_end, s_a2, ts(end + w2 + t2), w2, t2, 0.0)
            self._answered(server, q2, a2, end, w2, t2, 0.0)
            end = end + w2 + t2
            talk_total = round(talk + t2, 3)
            s_end = ts(end)
        h = self._count_call(start, server, queue, wait)
        h[3] += 1
        h[4] += talk_total
        a = self._a(start, server, queue, agent)
        a[0] += 1
        a[1] += 1
        a[2] += wait
        a[3] += talk_total
        self.rows["calls"].append(
            f"{server}\t{linkedid}\t{linkedid}\t{number}\t{queue}\t{agent}\tanswered\tcaller\t"
            f"{s_start}\t{s_entered}\t{s_answered}\t{s_end}\t{wait:.3f}\t{talk_total:.3f}\t"
            f"{hold:.3f}\n"
        )
        if rng.random() < 0.23:
            self.ticket += 1
            created = ts(end + 20)
            category = CATEGORIES[bisect.bisect(CAT_CUM, rng.random())][0]
            self.rows["tickets"].append(
                f"{self.ticket}\t{self.day.year}-{self.ticket:08d}\t{category}\tphone\t"
                f"{number}\t{agent}\t{created}\t{created}\n"
            )
            self.rows["ticket_calls"].append(
                f"{self.ticket}\t{server}\t{linkedid}\tphone\t{created}\n"
            )
            hour = bucket(start)
            self.rows["report_request_calls"].append(
                f"{server}\t{linkedid}\t{category}\t{self.ts(hour)}\t{queue}\t{agent}\t1\n"
            )
            self.requests.setdefault((hour, server, queue, category), [0])[0] += 1
            self.agent_requests.setdefault((hour, server, queue, agent), [0])[0] += 1

    def unanswered(
        self,
        server: str,
        linkedid: str,
        number: str,
        queue: str,
        start: float,
        entered: float,
        s_start: str,
        s_entered: str,
    ) -> None:
        """A caller who hung up, timed out or found the queue empty."""
        rng = self.rng
        kind = rng.random()
        outcome = "abandoned" if kind < 0.8 else "timeout" if kind < 0.97 else "exit_empty"
        wait = rng.uniform(0, 8) if kind < 0.25 else rng.expovariate(1 / 45.0)
        wait = 300.0 if outcome == "timeout" else round(wait, 3)
        s_end = self.ts(entered + wait)
        hangup = "caller" if outcome == "abandoned" else "system"
        self._count_call(start, server, queue, wait)
        h = self._h(entered, server, queue)
        self._count_wait(h, wait)
        if outcome == "abandoned":
            h[8 if wait < SHORT_S else 7] += 1
        else:
            h[9 if outcome == "timeout" else 10] += 1
        self.rows["calls"].append(
            f"{server}\t{linkedid}\t{linkedid}\t{number}\t{queue}\t{N}\t{outcome}\t"
            f"{hangup}\t{s_start}\t{s_entered}\t{N}\t{s_end}\t{wait:.3f}\t{N}\t0\n"
        )
        self.rows["queue_visits"].append(
            f"{server}\t{linkedid}\t1\t{queue}\t{N}\t{N}\t{outcome}\t{N}\t{s_entered}\t"
            f"{N}\t{s_end}\t{s_end}\t{wait:.3f}\t{N}\t0\t{N}\t[]\n"
        )

    def visit(
        self,
        server: str,
        linkedid: str,
        seq: int,
        queue: str,
        agent: str,
        s_entered: str,
        s_answered: str,
        s_end: str,
        wait: float,
        talk: float,
        hold: float,
    ) -> None:
        """An answered visit's row (``_answered`` counts it), and a missed ring now and then."""
        rng = self.rng
        ring = 1 + rng.random() * 3
        offers = f'{{"agent": "{agent}", "result": "answered", "ring_s": {ring:.3f}}}'
        if rng.random() < 0.08:
            other = rng.choice(self.queue_agents[queue])
            offers = f'{{"agent": "{other}", "result": "no_answer", "ring_s": 15.0}}, ' + offers
            self.missed = other
        self.rows["queue_visits"].append(
            f"{server}\t{linkedid}\t{seq}\t{queue}\t{agent}\tLocal/{agent[-3:]}@agents\t"
            f"answered\tcaller\t{s_entered}\t{s_answered}\t{s_answered}\t{s_end}\t"
            f"{wait:.3f}\t{talk:.3f}\t{hold:.3f}\t{ring:.3f}\t[{offers}]\n"
        )

    def _answered(
        self,
        server: str,
        queue: str,
        agent: str,
        entered: float,
        wait: float,
        talk: float,
        hold: float,
    ) -> None:
        """Counts an answered visit for its queue and its agent (and the agent who missed it)."""
        if self.missed is not None:
            a = self._a(entered, server, queue, self.missed)
            a[11] += 1
            a[12] += 1
            self.missed = None
        h = self._h(entered, server, queue)
        self._count_wait(h, wait)
        in_sl = wait <= SL_S
        h[6] += 1
        h[11] += in_sl
        h[12] += 1
        h[13] += wait
        h[14] += 1
        h[15] += talk
        h[16] += hold
        a = self._a(entered, server, queue, agent)
        for i, v in ((4, 1), (5, in_sl), (6, 1), (7, wait), (8, 1), (9, talk), (10, hold)):
            a[i] += v
        a[11] += 1  # rang

    def staff(self) -> None:
        """Every agent's shift (a session per queue) and three pauses in all their queues."""
        rng = self.rng
        for queue, agents in self.queue_agents.items():
            server = SERVER[queue]
            for agent in agents:
                iface = f"Local/{agent[-3:]}@agents"
                login = self.t0 + 8 * 3600 + rng.uniform(-900, 900)
                logoff = login + 9 * 3600 + rng.uniform(-900, 900)
                self.rows["agent_sessions"].append(
                    f"{server}\t{iface}\t{queue}\t{self.ts(login)}\t{agent}\t{self.ts(logoff)}\tf\n"
                )
                for i, reason in enumerate(rng.sample(PAUSE_REASONS, 3)):
                    start = login + (i + 1) * 2.5 * 3600 + rng.uniform(-600, 600)
                    length = rng.uniform(300, 1800)
                    self.rows["agent_pauses"].append(
                        f"{server}\t{iface}\t{queue}\t{self.ts(start)}\t{agent}\t{reason}\t"
                        f"{self.ts(start + length)}\t{length:.3f}\n"
                    )


def render_day(
    args: tuple[date, int, int, int],
) -> tuple[dict[str, bytes], Sums, Sums, Sums, Sums]:
    """Worker entry point: one day's COPY text per table and its rollup sums."""
    day, n, seq0, agents = args
    return Day(day, n, seq0, agents).render()
