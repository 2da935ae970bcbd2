"""docker/ monitoring files: promtool accepts them, and they only name metrics we export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.metrics.exporter import attach

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "docker" / "prometheus"
GRAFANA = ROOT / "docker" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "callcenter.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus) missing")

# Series Prometheus makes itself for every scrape target.
_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_KEYWORDS |= {"and", "or", "unless", "offset", "inf", "nan"}
# Grafana's variables, as Prometheus would see them after Grafana replaced them.
_GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1d",
    "$queue": ".*",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS
    )


def exported_names() -> set[str]:
    """Every series name the service's /metrics can carry, suffixes included."""
    exporter = attach(Service(Settings()))
    names: set[str] = set()
    for family in exporter.registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
        elif family.type == "summary":
            names.update(family.name + s for s in ("", "_sum", "_count"))
        elif family.type == "info":
            names.add(family.name + "_info")
        else:
            names.add(family.name)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        if text[m.end() :].lstrip().startswith("("):
            continue  # a function call
        if m.group().lower() not in _KEYWORDS:
            names.add(m.group())
    return names


def _alert_rules() -> list[dict[str, str]]:
    """The alerts of alerts.yml: name, expr and for (a reader for this file's YAML subset).

    PyYAML is not a dependency of the project; alerts.yml keeps to ``key: value`` lines and
    ``expr: |`` blocks, and promtool (above) checks that it is valid YAML for Prometheus.
    """
    rules: list[dict[str, str]] = []
    lines = (PROMETHEUS / "alerts.yml").read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"(\s*)(?:- )?(alert|expr|for):\s*(.*)$", line)
        i += 1
        if m is None:
            continue
        indent, key, value = len(m.group(1)), m.group(2), m.group(3).strip()
        if key == "alert":
            rules.append({"alert": value})
            continue
        if value in ("|", "|-", ">", ">-"):
            block = []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
                block.append(lines[i].strip())
                i += 1
            value = "\n".join(block).strip()
        rules[-1][key] = value.strip("'\"")
    return rules


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _yaml_values(path: Path, key: str) -> list[str]:
    """Every ``key: value`` of a simple YAML file, quotes removed."""
    found = re.findall(rf"^\s*(?:- )?{key}:\s*(.+?)\s*$", path.read_text(encoding="utf-8"), re.M)
    return [v.strip("'\"") for v in found]


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _dashboard_exprs() -> list[str]:
    return [t["expr"] for p in _dashboard()["panels"] for t in p.get("targets", [])]


def _for_prometheus(expr: str) -> str:
    for var, replacement in _GRAFANA_VARS.items():
        expr = expr.replace(var, replacement)
    return expr


def test_the_name_parser_finds_metrics_and_skips_the_rest() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le, queue) (rate(a_bucket{queue=~"x", le="20.0"}[5m])))'
        " / on (queue) group_left b_total offset 1d and c > 0.8 unless time() - d"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d"}


@needs_promtool
def test_promtool_accepts_the_scrape_config_the_rules_and_their_unit_tests() -> None:
    for args in (
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
        ("check", "rules", "rules.yml"),
        ("test", "rules", "rules_test.yml"),
    ):
        done = _promtool(*args)
        assert done.returncode == 0, f"promtool {' '.join(args)}: {done.stdout}{done.stderr}"


def test_alerts_cover_what_the_issue_asks_for() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in _alert_rules()}
    assert "up" in metric_names(exprs["CallcenterDown"])
    assert "callcenter_ami_connected" in metric_names(exprs["CallcenterAmiDisconnected"])
    assert "callcenter_queue_oldest_wait_seconds" in metric_names(exprs["QueueOldestWaitHigh"])
    assert "callcenter_queue_wait_seconds_bucket" in metric_names(exprs["QueueServiceLevelLow"])
    assert next(r for r in _alert_rules() if r["alert"] == "QueueServiceLevelLow")["for"] == "15m"
    abandon = metric_names(exprs["QueueAbandonRateHigh"])
    assert "callcenter_queue_calls_exited_total" in abandon


def test_every_expression_names_only_exported_metrics() -> None:
    exported = exported_names() | _SYNTHETIC
    assert {"callcenter_queue_wait_seconds_bucket", "callcenter_ami_connected"} <= exported
    exprs = [rule["expr"] for rule in _alert_rules()] + _dashboard_exprs()
    assert len(exprs) > 20
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, f"{sorted(names - exported)} in {expr}"


@needs_promtool
def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    # promtool has no expression checker: the expressions become recording rules it parses.
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": _for_prometheus(expr)}
        for i, expr in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "dashboard_rules.yml"  # JSON is YAML too
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = _promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_is_ready_for_file_provisioning() -> None:
    sources = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
    assert _yaml_values(sources, "apiVersion") == ["1"]
    assert _yaml_values(sources, "type") == ["prometheus"]
    assert _yaml_values(sources, "url")[0].startswith("http://")
    (uid,) = _yaml_values(sources, "uid")
    providers = GRAFANA / "provisioning" / "dashboards" / "callcenter.yml"
    assert _yaml_values(providers, "apiVersion") == ["1"]
    assert _yaml_values(providers, "type") == ["file"]
    assert _yaml_values(providers, "path")[0].startswith("/")

    board = _dashboard()
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert board["title"] and isinstance(board["schemaVersion"], int)
    assert "id" not in board or board["id"] is None  # Grafana assigns ids on import
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for var in board["templating"]["list"]:
        if "datasource" in var:
            assert var["datasource"]["uid"] == uid
    titles = []
    for p in board["panels"]:
        assert set(p["gridPos"]) == {"x", "y", "w", "h"}
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] == "row":
            continue
        titles.append(p["title"])
        assert p["datasource"] == {"type": "prometheus", "uid": uid}, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["datasource"]["uid"] == uid
    # What a supervisor needs, by the metric each panel is built on.
    used = set().union(*(metric_names(e) for e in _dashboard_exprs()))
    for needed in (
        "callcenter_queue_calls_waiting",
        "callcenter_queue_oldest_wait_seconds",
        "callcenter_queue_agents",
        "callcenter_queue_wait_seconds_bucket",
        "callcenter_call_talk_seconds_bucket",
        "callcenter_queue_calls_exited_total",
        "callcenter_ami_connected",
        "callcenter_ami_last_event_timestamp_seconds",
    ):
        assert needed in used, needed


def _recording_rules() -> dict[str, str]:
    """rules.yml's recording rules: name -> expression (one ``record:``/``expr:`` pair each)."""
    text = (PROMETHEUS / "rules.yml").read_text(encoding="utf-8")
    pairs = re.findall(r"- record:\s*(\S+)\s*\n\s*expr:\s*(.+)", text)
    return {name: expr.strip() for name, expr in pairs}


def test_agent_panels_count_each_agent_once() -> None:
    # The panels of agents read the per-agent series (no queue label): an agent in five
    # queues is one agent. rules_test.yml runs these very expressions through promtool.
    panels = {p["id"]: p for p in _dashboard()["panels"]}
    by_title = {p["title"]: p for p in panels.values()}
    rules = _recording_rules()
    assert set(rules) == {
        "callcenter:agents:by_state",
        "callcenter:agents_paused:by_reason",
        "callcenter:queue_memberships:by_queue_state",
    }
    agents = by_title["Temsilciler durumlarına göre (Agents by state)"]["targets"][0]["expr"]
    assert agents == rules["callcenter:agents:by_state"]
    over_time = by_title["Temsilci durumları (Agent states over time)"]["targets"][0]["expr"]
    assert over_time == rules["callcenter:agents:by_state"]
    paused = by_title["Molada, nedene göre (Paused by reason)"]["targets"][0]["expr"]
    assert paused == rules["callcenter:agents_paused:by_reason"]
    # The queue breakdown is kept, in a panel of its own that says it counts memberships.
    memberships = by_title["Kuyruk üyelikleri durumlarına göre (Queue memberships by state)"]
    expr = memberships["targets"][0]["expr"]
    assert (
        expr.replace('{queue=~"$queue"}', "")
        == rules["callcenter:queue_memberships:by_queue_state"]
    )
    # No panel of agents sums the per-queue memberships any more.
    for panel in panels.values():
        for target in panel.get("targets", []):
            if "callcenter_queue_agents" in target["expr"]:
                assert panel is memberships, panel["title"]
    # Panels do not overlap on the grid.
    cells: set[tuple[int, int]] = set()
    for panel in panels.values():
        g = panel["gridPos"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, panel["title"]
        cells |= mine
