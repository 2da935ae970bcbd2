"""The screen-pop as an HTML page (for softphones that open a URL), Turkish first."""

from __future__ import annotations

from html import escape
from typing import Any

LABELS = {
    "tr": {
        "title": "Arayan",
        "ringing": "Çalıyor",
        "connected": "Görüşmede",
        "ended": "Görüşme bitti",
        "unknown": "Bilinmeyen arayan",
        "queue": "Kuyruk",
        "wait": "Bekleme",
        "ivr": "Sesli yanıt seçimleri",
        "digits": "Tuşlanan",
        "recent": "Son aramalar",
        "tickets": "Açık talepler",
        "none": "Yok",
        "no_recent": "Daha önce araması yok.",
        "date": "Tarih",
        "outcome": "Sonuç",
        "agent": "Temsilci",
        "switch": "English",
        "seconds": "sn",
    },
    "en": {
        "title": "Caller",
        "ringing": "Ringing",
        "connected": "On the call",
        "ended": "Call ended",
        "unknown": "Unknown caller",
        "queue": "Queue",
        "wait": "Wait",
        "ivr": "IVR choices",
        "digits": "Keyed in",
        "recent": "Recent calls",
        "tickets": "Open requests",
        "none": "None",
        "no_recent": "No earlier calls.",
        "date": "Date",
        "outcome": "Outcome",
        "agent": "Agent",
        "switch": "Türkçe",
        "seconds": "s",
    },
}


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def render(pop: dict[str, Any], lang: str, switch_url: str) -> str:
    """The pop as a small, self-contained, accessible HTML page."""
    t = LABELS.get(lang, LABELS["tr"])
    caller = pop["caller"]
    number = caller.get("national") or caller.get("number") or ""
    rows = (
        "".join(
            f"<tr><td>{_e(c['date'])}</td><td>{_e(c['outcome'])}</td><td>{_e(c['agent'])}</td></tr>"
            for c in pop["recent_calls"]
        )
        or f'<tr><td colspan="3">{_e(t["no_recent"])}</td></tr>'
    )

    tickets = "".join(
        f"<li><strong>{_e(x['reference'])}</strong> {_e(x['category'])} ({_e(x['status'])})</li>"
        for x in pop["open_tickets"]
    )
    ivr = pop["ivr"]
    wait = pop.get("wait_s")
    return f"""<!doctype html>
<html lang="{_e(lang)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(t["title"])}: {_e(caller.get("name") or number)}</title>
<style>body{{font:16px system-ui,sans-serif;margin:1rem;max-width:40rem}}
table{{border-collapse:collapse}}td,th{{padding:.2rem .6rem;border-bottom:1px solid #ccc}}
.stage{{font-weight:bold}}</style></head>
<body><main>
<p><a href="{_e(switch_url)}" hreflang="{"en" if lang == "tr" else "tr"}">{_e(t["switch"])}</a></p>
<h1 id="caller">{_e(caller.get("name") or t["unknown"])}</h1>
<p class="stage">{_e(t.get(pop["stage"], pop["stage"]))}</p>
<dl>
<dt>{_e(t["title"])}</dt><dd id="number">{_e(number)} <small>{_e(caller.get("e164"))}</small></dd>
<dt>{_e(t["queue"])}</dt><dd>{_e(pop.get("queue"))}</dd>
<dt>{_e(t["wait"])}</dt><dd>{_e(round(wait) if wait is not None else "")} {_e(t["seconds"])}</dd>
<dt>{_e(t["ivr"])}</dt><dd>{_e(" › ".join(ivr["path"]))}</dd>
<dt>{_e(t["digits"])}</dt><dd>{_e(ivr["digits"])}</dd>
</dl>
<h2>{_e(t["tickets"])}</h2>
<ul id="tickets">{tickets or f"<li>{_e(t['none'])}</li>"}</ul>
<h2>{_e(t["recent"])}</h2>
<table id="recent"><thead><tr><th>{_e(t["date"])}</th><th>{_e(t["outcome"])}</th>
<th>{_e(t["agent"])}</th></tr></thead><tbody>{rows}</tbody></table>
</main></body></html>
"""
