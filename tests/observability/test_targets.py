"""The target table is declared once (telemetry/targets.py) and everything else follows it."""

from __future__ import annotations

import pytest

from service import stats
from telemetry import alerts as a
from telemetry import dashboards as d
from telemetry import names as n
from telemetry import promql
from telemetry import targets as tg
from tests.observability.conftest import ROOT


def test_the_manual_table_in_the_stats_is_the_declared_one() -> None:
    """The stats report the manual's five rows (§5.7), in its order, with the declared
    threshold and direction."""
    assert [t.key for t in stats.TARGETS] == [
        "confirmation_rate", "slot_taken_rate", "anti_loop_rate", "phone_recovery_rate", "long_slot_message_rate",
    ]
    for row, declared in zip(stats.TARGETS, tg.MANUAL_TABLE, strict=True):
        assert (row.threshold, row.comparison) == (declared.threshold, declared.comparison)
    assert stats.TARGETS[0].comparison == ">" and stats.TARGETS[0].threshold == n.CONVERSION_TARGET
    assert f"over {n.LONG_SLOT_MESSAGE_CHARS} chars" in stats.TARGETS[-1].label


@pytest.mark.parametrize("target", tg.TARGETS, ids=lambda t: t.share)
def test_each_target_is_alerted_drawn_and_recorded(target: tg.Target) -> None:
    """Every target has its share's PromQL, alerts at its thresholds in the right direction, and
    a dashboard panel titled from it that draws the threshold."""
    assert target.share in promql.SHARES
    specs = [s for s in a.ALERT_SPECS if s.ratio == target.share]
    assert [s.name for s in specs] == [alert.name for alert in target.alerts]
    for spec in specs:
        assert spec.above is not target.above
        assert tg.percent(spec.threshold) in spec.description and spec.panel == target.panel
    panels = {p["title"]: p for p in d.dashboard()["panels"]}
    assert target.panel in panels
    steps = [s["value"] for s in panels[target.panel]["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert target.threshold in steps


def test_titles_carry_the_declared_numbers() -> None:
    """The panel titles say the thresholds they are generated from."""
    assert tg.CONVERSION.panel == "Conversion (alert windows) vs 70 % target and 50 % floor"
    assert tg.LONG_SLOT_MESSAGES.panel == f"Slot messages over {n.LONG_SLOT_MESSAGE_CHARS} characters vs 20 %"
    assert tg.NO_SLOT.panel.endswith(f"vs {tg.percent(n.NO_SLOT_TRANSFER_SHARE_MAX)}")


@pytest.mark.parametrize("spec", a.ALERT_SPECS, ids=lambda s: s.name)
def test_runbook_headings_are_generated(spec: a.AlertSpec) -> None:
    """Each target alert's runbook starts with the generated heading, threshold and severity."""
    first = (ROOT / a.runbook_path(spec.name)).read_text("utf-8").split("\n", 1)[0]
    assert first == spec.runbook_heading
    assert first.startswith(f"# {spec.name} — ") and tg.percent(spec.threshold) in first
    assert ("critical, pages" in first) is spec.page


def test_rules_and_dashboard_write_a_share_the_same_way() -> None:
    """The long-slot share the dashboard draws live is the recorded rule's, with the dashboard's
    variables added: one PromQL writer."""
    share = promql.SHARES["long_slot_messages"]
    rule = next(r for g in a.rule_groups(a.RuleParams())["groups"] for r in g["rules"]
                if r.get("record") == a.record_name("long_slot_messages", "ratio"))
    assert share.events("6h", promql.plain) in rule["expr"]
    live = d.long_slot_share(d.RATE_INTERVAL)
    assert live == share.expr(d.RATE_INTERVAL, d.select)
    assert live.replace(',channel=~"$channel",instance=~"$instance"', "").replace(
        '{channel=~"$channel",instance=~"$instance"}', "") == share.expr(d.RATE_INTERVAL)
