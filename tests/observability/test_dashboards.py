"""The generated Grafana dashboard: committed as generated, valid PromQL, contract names only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from telemetry import alerts as a
from telemetry import dashboards as d
from telemetry import generate as g
from telemetry import names as n
from tests.observability.conftest import (
    PROMETHEUS_BUILTINS,
    ROOT,
    load_yaml,
    rules_file,
    run,
    series_names,
    tool,
)

DASHBOARD = ROOT / d.DASHBOARD_FILE


def panels() -> list[dict[str, Any]]:
    """The generated panels, rows excluded."""
    return [p for p in d.dashboard()["panels"] if p["type"] != "row"]


def variable_series(query: str) -> set[str]:
    """Metric names of a ``label_values(selector, label)`` variable query."""
    match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
    assert match, query
    return series_names(match.group(1))


def panel(title: str) -> dict[str, Any]:
    """The generated panel called ``title``."""
    matches = [p for p in panels() if p["title"] == title]
    assert len(matches) == 1, title
    return matches[0]


def test_committed_dashboard_is_the_generated_one() -> None:
    """``dashboards/rdv-overview.json`` equals the generator's output (run the generator if not)."""
    assert DASHBOARD.read_text("utf-8") == g.render_dashboard(), "run: python -m telemetry.generate"


def test_generator_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    """``--check`` fails on a missing or edited file and passes once the file is written."""
    assert d.main(["--root", str(tmp_path), "--check"]) == 1
    assert d.main(["--root", str(tmp_path)]) == 0
    assert d.main(["--root", str(tmp_path), "--check"]) == 0
    (tmp_path / d.DASHBOARD_FILE).write_text("{}", "utf-8")
    assert d.main(["--root", str(tmp_path), "--check"]) == 1


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard expression once Grafana's variables are expanded."""
    promtool = tool("promtool")
    queries = {key: d.expand(expr) for key, expr in d.dashboard_queries().items()}
    checked = run(promtool, "check", "rules", str(rules_file(tmp_path / "queries.yml", queries)))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout


def test_queries_name_only_contract_series_and_recording_rules() -> None:
    """Every metric name in a query is in all_series(), a recording rule, or Prometheus' own."""
    allowed = n.all_series() | a.recording_rule_names() | PROMETHEUS_BUILTINS
    unknown = {
        key: sorted(series_names(expr) - allowed) for key, expr in d.dashboard_queries().items()
        if series_names(expr) - allowed
    }
    assert unknown == {}
    assert all(series_names(expr) for expr in d.dashboard_queries().values())
    for query in d.variable_queries().values():
        assert variable_series(query) <= n.all_series(), query


def test_the_name_parser_finds_names_and_skips_the_rest() -> None:
    """The parser used above sees metric names, not functions, labels, keywords or strings."""
    expr = ('sum by (le, channel) (rate(rdv_x_bucket{le=~"350|350.0",a="b c"}[5m])) / on (channel) '
            'group_left channel:rdv_y:ratio{window="1h"} and bool up offset 5m or vector(0)')
    assert series_names(expr) == {"rdv_x_bucket", "channel:rdv_y:ratio", "up"}


def test_every_contract_metric_has_a_panel() -> None:
    """Each metric of the contract is shown somewhere (build info through the instance variable)."""
    used = set().union(*(series_names(e) for e in d.dashboard_queries().values()))
    used |= set().union(*(variable_series(q) for q in d.variable_queries().values()))
    missing = [m.name for m in n.METRICS if not set(m.series) & used]
    assert missing == []


def test_conversion_panels_draw_the_target_and_the_floor() -> None:
    """The conversion panel and stat are coloured at exactly the 50 % floor and 70 % target."""
    for title in (a.PANEL_CONVERSION, "Conversion over the range"):
        defaults = panel(title)["fieldConfig"]["defaults"]
        values = [s["value"] for s in defaults["thresholds"]["steps"]]
        assert values == [None, n.CONVERSION_FLOOR, n.CONVERSION_TARGET]
        assert defaults["unit"] == "percentunit"
    custom = panel(a.PANEL_CONVERSION)["fieldConfig"]["defaults"]["custom"]
    assert custom["thresholdsStyle"]["mode"] == "line"
    exprs = [t["expr"] for t in panel(a.PANEL_CONVERSION)["targets"]]
    assert any("wilson_upper" in e for e in exprs) and any(":ratio" in e for e in exprs)


@pytest.mark.parametrize(
    ("title", "threshold"),
    [
        (a.PANEL_SLOT_TAKEN, n.SLOT_TAKEN_MAX),
        (a.PANEL_ANTI_LOOP, n.ANTI_LOOP_MAX),
        (a.PANEL_PHONE_RECOVERY, n.PHONE_RECOVERY_MAX),
        (a.PANEL_LONG_SLOTS, n.LONG_SLOT_MESSAGE_SHARE_MAX),
    ],
)
def test_ratio_panels_draw_their_ceiling(title: str, threshold: float) -> None:
    """Each target-table ratio panel has a threshold line at the contract's ceiling."""
    defaults = panel(title)["fieldConfig"]["defaults"]
    assert [s["value"] for s in defaults["thresholds"]["steps"]] == [None, threshold]
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"


def test_long_message_share_uses_the_bucket_on_the_threshold() -> None:
    """The 350-character threshold is a bucket edge, and the share reads that ``le`` bucket."""
    assert float(n.LONG_SLOT_MESSAGE_CHARS) in n.SLOTS_MESSAGE_BUCKETS
    expr = panel(a.PANEL_LONG_SLOTS)["targets"][0]["expr"]
    assert a.long_bucket_matcher() in expr and f"{n.SLOTS_MESSAGE_LENGTH.name}_count" in expr


def test_latency_has_three_quantiles_with_exemplars() -> None:
    """p50, p95 and p99 of turn latency, each with exemplars (trace links) enabled."""
    targets = panel("Turn latency p50 / p95 / p99")["targets"]
    assert [t["legendFormat"] for t in targets] == ["p50", "p95", "p99"]
    assert all(t["exemplar"] and n.TURN_DURATION.name in t["expr"] for t in targets)


def test_slot_length_distribution_is_a_heatmap_of_buckets() -> None:
    """The length distribution is a heatmap fed with ``le`` buckets, not recalculated."""
    heat = panel("Slot-message length distribution")
    assert heat["type"] == "heatmap" and heat["options"]["calculate"] is False
    assert heat["targets"][0]["format"] == "heatmap"


def test_required_panels_exist() -> None:
    """The panels the issue asks for are all there."""
    titles = {p["title"] for p in panels()}
    for required in (
        "Funnel by state", "Outcomes over the range", "Booking failures by result",
        "Anti-loop hits", "Recovery limits reached by field", "Vapi ended reasons",
        "Conversations started per channel", "Active conversations", "State transitions",
        "Interruptions, intent overrides, fillers, expiries",
    ):
        assert required in titles


def test_funnel_follows_the_happy_path_order() -> None:
    """The funnel's bars are the engine's FUNNEL states, in order."""
    from service.engine.states import FUNNEL

    legends = [t["legendFormat"] for t in panel("Funnel by state")["targets"]]
    assert legends == [s.value for s in FUNNEL]


def test_variables_channel_and_instance_filter_every_raw_query() -> None:
    """Both template variables exist; every raw query of a labelled series honours them."""
    variables = {v["name"]: v for v in d.dashboard()["templating"]["list"]}
    assert set(variables) == {"channel", "instance"}
    assert variables["channel"]["query"] == ",".join(n.CHANNELS)
    for key, expr in d.dashboard_queries().items():
        if series_names(expr) & n.all_series():
            assert 'instance=~"$instance"' in expr, key
            # Series without a channel label: Vapi's reasons, the calendar, the scrape, the store,
            # the span exporter.
            unlabelled = (n.VAPI_ENDED_REASONS.name, n.CALENDAR_REQUESTS.name, n.CALENDAR_DURATION.name,
                          n.STORE_UNAVAILABLE.name, n.SPANS_DROPPED.name)
            if n.SCRAPE_UP not in series_names(expr) and not any(name in expr for name in unlabelled):
                assert 'channel=~"$channel"' in expr, key


def test_layout_is_valid_grafana_json() -> None:
    """Unique ids, panels inside the 24-column grid without overlaps, Grafana 11 schema, fixed uid."""
    board = json.loads(DASHBOARD.read_text("utf-8"))
    assert board["uid"] == d.DASHBOARD_UID and board["schemaVersion"] >= 39
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= d.GRID_WIDTH
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, p["title"]
        cells |= area
        refs = [t["refId"] for t in p.get("targets", [])]
        assert len(refs) == len(set(refs))


def test_dashboard_datasources_are_the_provisioned_ones() -> None:
    """Every datasource uid the dashboard uses is provisioned with that uid and type."""
    provisioned = load_yaml(ROOT / "deploy/grafana/provisioning/datasources/datasources.yml")["datasources"]
    by_uid = {ds["uid"]: ds["type"] for ds in provisioned}
    used: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ds = node.get("datasource")
            if isinstance(ds, dict) and ds.get("type") != "grafana":
                used.add((ds["uid"], ds["type"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(d.dashboard())
    assert used == {(d.PROMETHEUS_UID, "prometheus")}
    assert all(by_uid.get(uid) == kind for uid, kind in used)
