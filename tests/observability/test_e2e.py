"""End to end: rdv, a real Prometheus and Alertmanager with the generated rules, a webhook pager.

Callers who ask for a human push conversion under 50 %: the page reaches the pager, the 70 %
warning is inhibited, every dashboard query returns data; successful bookings bring conversion
back up and the pager receives the resolution. Windows are seconds instead of hours.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from telemetry import alerts as a
from telemetry import dashboards as d
from telemetry import generate as g
from telemetry import names as n
from tests.observability.conftest import ROOT, series_names, tool
from tests.observability.stack import Proc, PrometheusApi, Webhook, wait_for
from tests.support import free_port

PAGE = "RdvConversionBelowFloor"
WARNING = "RdvConversionBelowTarget"
WINDOW = "3m"  # long enough to hold the whole scenario, so resolution comes from bookings
PARAMS = a.RuleParams(
    page_window=WINDOW, page_short_window="1m", warning_window=WINDOW, page_for="0s",
    warning_for="3s", min_conversations_page=5, min_conversations_warning=5,
)
AM_PARAMS = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1m",
             "page_repeat_interval": "1m", "deadman_repeat_interval": "1m"}
ALERT_TIMEOUT = 45.0

# Contract metrics the service declares but does not export yet: their panels stay empty.
# Each entry is asserted empty, so the list must shrink as soon as the gap is fixed.
NOT_EXPORTED: dict[str, str] = {}
# Queries that look a week back: nothing there in a stack started minutes ago.
WEEK_BACK = frozenset(key for key, expr in d.dashboard_queries().items() if "offset 7d" in expr)
# Panels that must show a positive value once the scenario's traffic has flowed.
POSITIVE = (
    "Conversion over the range / A", "Conversations ended / A", "Bookings confirmed / A",
    "Funnel by state / A", "Funnel by state / B", "Funnel by state / C", "Funnel by state / D",
    "Funnel by state / F", "Firing alerts / A", "Turn latency p50 / p95 / p99 / A",
    "Transfers by state of origin / A", "Outcomes over the range / A",
)


@dataclass
class Stack:
    """The running processes and their addresses."""

    rdv: str
    prometheus: PrometheusApi
    alertmanager: str
    hook: Webhook


def _rdv_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RDV_", "OTEL_", "PROMETHEUS_"))}
    env.update({"RDV_DATA_DIR": str(data_dir), "OTEL_TRACES_EXPORTER": "none", "PYTHONUNBUFFERED": "1"})
    return env


def _prometheus_config(rules: Path, rdv_port: int, am_port: int) -> dict[str, Any]:
    """deploy/prometheus.yml with local targets, 1 s intervals and the short-window rules."""
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text("utf-8"))
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(rules)]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
    rdv_job = next(job for job in config["scrape_configs"] if job["job_name"] == "rdv")
    rdv_job["static_configs"][0]["targets"] = [f"127.0.0.1:{rdv_port}"]
    config["scrape_configs"] = [rdv_job]
    return config


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """rdv, Alertmanager and Prometheus on free local ports; everything stopped afterwards."""
    prometheus_bin, alertmanager_bin = tool("prometheus"), tool("prometheus-alertmanager")
    rdv_bin = Path(sys.executable).with_name("rdv")
    ports = {name: free_port() for name in ("rdv", "prometheus", "alertmanager")}
    hook = Webhook()
    procs: list[Proc] = []
    try:
        data = tmp_path / "rdv-data"
        data.mkdir()
        rdv = Proc("rdv", [str(rdv_bin), "serve", "--host", "127.0.0.1", "--port", str(ports["rdv"])],
                   tmp_path, _rdv_env(data))
        procs.append(rdv)
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(g.render_alertmanager(a.AlertmanagerParams(
            pager_url=hook.url("/pager"), chat_url=hook.url("/chat"), deadman_url=hook.url("/deadman"),
            **AM_PARAMS,
        )), "utf-8")
        am = Proc("alertmanager", [
            alertmanager_bin, f"--config.file={am_config}", f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", "--cluster.listen-address=",
        ], tmp_path)
        procs.append(am)
        rules = tmp_path / "rdv.rules.yml"
        rules.write_text(g.render_rules(PARAMS), "utf-8")
        prom_config = tmp_path / "prometheus.yml"
        prom_config.write_text(yaml.safe_dump(_prometheus_config(rules, ports["rdv"], ports["alertmanager"])))
        prom = Proc("prometheus", [
            prometheus_bin, f"--config.file={prom_config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--enable-feature=exemplar-storage",
            "--rules.alert.resend-delay=1s",  # alerts that fired before Alertmanager was found
        ], tmp_path)
        procs.append(prom)
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        rdv.wait_ready(f"{urls['rdv']}/readyz")
        am.wait_ready(f"{urls['alertmanager']}/-/ready")
        prom.wait_ready(f"{urls['prometheus']}/-/ready")
        yield Stack(urls["rdv"], PrometheusApi(urls["prometheus"]), urls["alertmanager"], hook)
        for proc in procs:
            proc.check_alive()
    finally:
        for proc in reversed(procs):
            proc.stop()
        hook.close()


class Callers:
    """Conversations on the text API, each with its own id and caller number."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.count = 0
        self.trace_ids: set[str] = set()

    def _say(self, conv: str, text: str, phone: str) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/api/conversations/{conv}/messages",
                              json={"text": text, "caller_phone": phone}, timeout=10.0)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        self.trace_ids.add(body["trace_id"])
        return body

    def _next(self) -> tuple[str, str]:
        self.count += 1
        return f"conv_e2e_{self.count:03d}", f"+336123{self.count:05d}"

    def book(self) -> None:
        """A caller who books the first proposed slot: outcome confirmed."""
        conv, phone = self._next()
        for text in ("bonjour je voudrais prendre rendez-vous", "Jean Dupont", "pas de préférence"):
            assert not self._say(conv, text, phone)["ended"]
        last = self._say(conv, "le premier", phone)
        assert (last["state"], last["ended"]) == ("CONFIRMED", True), last

    def ask_for_a_human(self) -> None:
        """A caller who starts booking, then asks for a person: intent override, transferred."""
        conv, phone = self._next()
        assert self._say(conv, "bonjour je voudrais prendre rendez-vous", phone)["state"] == "QUALIF_NAME"
        last = self._say(conv, "je veux parler à un humain", phone)
        assert (last["state"], last["ended"]) == ("TRANSFERRED", True), last


def _recorded(stack: Stack, kind: str) -> float | None:
    return stack.prometheus.value(f'{a.record_name("conversion", kind)}{{window="{WINDOW}",channel="text"}}')


def _firing(stack: Stack, alert: str) -> bool:
    return bool(stack.prometheus.query(f'ALERTS{{alertname="{alert}",alertstate="firing"}}'))


def _inhibited_warning(stack: Stack) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.alertmanager}/api/v2/alerts",
                         params={"filter": f'alertname="{WARNING}"'}, timeout=5.0)
    return [x for x in response.json() if x["status"]["state"] == "suppressed" and x["status"]["inhibitedBy"]]


def _exported(stack: Stack) -> set[str]:
    text = httpx.get(f"{stack.rdv}/metrics", timeout=5.0).text
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def _check_dashboard_queries(stack: Stack) -> None:
    """Every dashboard query returns data; the traffic-driven ones a positive value."""
    exported = _exported(stack)
    empty, values = [], {}
    for key, expr in d.dashboard_queries().items():
        if key in WEEK_BACK:
            continue
        # `up` comes from Prometheus' scrape, not from rdv's exposition.
        missing = (series_names(expr) & n.all_series()) - exported - {n.SCRAPE_UP}
        result = stack.prometheus.query(d.expand(expr, range_="10m", rate_interval="1m"))
        if missing:
            assert missing <= set(NOT_EXPORTED), (key, missing)
            assert result == [], f"{key}: {missing} is exported now: remove it from NOT_EXPORTED"
            continue
        if not result:
            empty.append(key)
        values[key] = max((float(r["value"][1]) for r in result), default=math.nan)
    assert empty == []
    assert {k: values[k] for k in POSITIVE if not values[k] > 0} == {}


@pytest.mark.slow
def test_page_fires_is_routed_inhibits_the_warning_and_resolves(stack: Stack) -> None:
    """The conversion page goes end to end through Prometheus and Alertmanager, then resolves."""
    wait_for("Prometheus to scrape rdv", lambda: stack.prometheus.value('up{job="rdv"}') == 1, 30)
    callers = Callers(stack.rdv)

    # Night traffic: 3 failures out of 4 calls. Under the floor: no page.
    callers.book()
    for _ in range(3):
        callers.ask_for_a_human()
    wait_for("the 4 calls to be recorded", lambda: (_recorded(stack, "n") or 0) >= 3.5, 20)
    evaluations: set[str | None] = set()

    def evaluated_thrice() -> bool:
        evaluations.add(stack.prometheus.last_evaluation(PAGE))
        return len(evaluations - {None}) > 3  # the first one seen may predate the data

    wait_for("several evaluations of the page with the data in", evaluated_thrice, 30)
    assert (_recorded(stack, "wilson_upper") or 0) > n.CONVERSION_FLOOR
    assert not _firing(stack, PAGE) and stack.hook.alerts("/pager", PAGE, "firing") == []

    # Six more callers ask for a human: 1 confirmed out of 10, confidently under 50 %.
    for _ in range(6):
        callers.ask_for_a_human()
    paged = wait_for("the page at the pager",
                     lambda: stack.hook.alerts("/pager", PAGE, "firing"), ALERT_TIMEOUT)
    assert paged[0]["labels"]["severity"] == a.SEVERITY_PAGE and paged[0]["labels"]["channel"] == "text"
    assert paged[0]["annotations"]["runbook_url"] == a.runbook_path(PAGE).as_posix()
    description = paged[0]["annotations"]["description"]
    assert re.fullmatch(r"Only \d+(\.\d+)?% of the text conversations .*", description)
    assert stack.hook.alerts("/chat", PAGE, "firing") == []

    # The 70 % warning fires too, but the page inhibits it: it never reaches the chat.
    wait_for("the warning to be inhibited by the page", lambda: _inhibited_warning(stack), ALERT_TIMEOUT)
    assert stack.hook.alerts("/chat", WARNING, "firing") == []
    wait_for("the watchdog at the dead man's switch",
             lambda: stack.hook.alerts("/deadman", a.WATCHDOG, "firing"), ALERT_TIMEOUT)

    # With traffic in, every dashboard query returns data (evaluated by this Prometheus).
    _check_dashboard_queries(stack)
    exemplars = stack.prometheus.exemplars(f"{n.TURN_DURATION.name}_bucket", 600)
    assert {e["labels"].get("trace_id") for e in exemplars} & callers.trace_ids

    # Fourteen bookings: 15 confirmed out of 24, conversion back over the floor; it resolves.
    for _ in range(14):
        callers.book()
    wait_for("the resolution at the pager",
             lambda: stack.hook.alerts("/pager", PAGE, "resolved"), ALERT_TIMEOUT)
    wait_for("the 24 calls to be recorded", lambda: (_recorded(stack, "n") or 0) >= 23.5, 20)
    assert (_recorded(stack, "ratio") or 0) > n.CONVERSION_FLOOR
    assert not _firing(stack, PAGE)
