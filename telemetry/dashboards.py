"""The Grafana overview dashboard, generated from the telemetry contract as plain JSON.

``python -m telemetry.generate`` writes it to ``dashboards/rdv-overview.json`` (``python -m
telemetry.dashboards`` is an alias). Metric names and label values come from
:mod:`telemetry.names`, the target table's thresholds and panel titles from
:mod:`telemetry.targets`, the shares' PromQL from :mod:`telemetry.promql` (the same as the alert
rules'); :func:`dashboard_queries` exposes every PromQL expression so that tests can validate and
evaluate them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from service.engine.states import FUNNEL, BookingResult, Outcome, State
from telemetry import alerts as a
from telemetry import names as n
from telemetry import promql
from telemetry import targets as tg

DASHBOARD_FILE: Final = Path("dashboards") / "rdv-overview.json"
DASHBOARD_UID: Final = "rdv-overview"
SCHEMA_VERSION: Final = 39  # Grafana 11
PROMETHEUS_UID: Final = "prometheus"
TRACES_UID: Final = "jaeger"
ALERTMANAGER_UID: Final = "alertmanager"
PROMETHEUS: Final = {"type": "prometheus", "uid": PROMETHEUS_UID}

GRID_WIDTH: Final = 24
PANEL_HEIGHT: Final = 8
STAT_HEIGHT: Final = 4
SINGLE_VALUE: Final = ("stat", "bargauge")  # panels coloured by threshold rather than by series

CONFIRMED: Final = Outcome.CONFIRMED.value
# Grafana's own variables, as they appear in expressions.
RANGE: Final = "$__range"
RATE_INTERVAL: Final = "$__rate_interval"


# --------------------------------------------------------------------------- selectors
def variables(metric: n.Metric) -> list[str]:
    """The matchers of the dashboard's variables a series of ``metric`` can be narrowed by."""
    parts = [f'{n.L_CHANNEL}=~"${n.L_CHANNEL}"'] if n.L_CHANNEL in metric.labels else []
    return [*parts, 'instance=~"$instance"']


def sel(metric: n.Metric, series: str | None = None, matchers: Sequence[str] = (), **labels: str) -> str:
    """Selector of ``metric`` (or its ``series``): matchers, labels, then the dashboard variables."""
    exact = [promql.eq(key, value) for key, value in labels.items()]
    return promql.selector(series or metric.name, *matchers, *exact, *variables(metric))


def select(metric: n.Metric, *matchers: str, series: str | None = None) -> str:
    """The dashboard's :class:`telemetry.promql.Select`: the shares narrowed to the variables."""
    return sel(metric, series, matchers)


def increase(
    metric: n.Metric, window: str, by: str = "", series: str | None = None,
    matchers: Sequence[str] = (), **labels: str,
) -> str:
    """``sum [by (…)] (increase(selector[window]))``."""
    return promql.increase(sel(metric, series, matchers, **labels), window, by)


def recorded(ratio: str, kind: str) -> str:
    """A share recorded by the alert rules, filtered by channel (every window)."""
    return f'{promql.record_name(ratio, kind)}{{{n.L_CHANNEL}=~"${n.L_CHANNEL}"}}'


def quantile(q: float, metric: n.Metric) -> str:
    """``histogram_quantile`` of ``metric`` over the rate interval, all selected series together."""
    buckets = sel(metric, f"{metric.name}_bucket")
    return f"histogram_quantile({q}, sum by (le) (rate({buckets}[{RATE_INTERVAL}])))"


def long_slot_share(window: str) -> str:
    """Share of slot messages over the long-message threshold (the alerts' share, live)."""
    return promql.SHARES[tg.LONG_SLOT_MESSAGES.share].expr(window, select)


def conversion(window: str, by: str = "") -> str:
    """Confirmed share of the ended conversations of the conversion population (the purposes of
    ``names.CONVERSION_PURPOSES``) over ``window``: the alerts' definition."""
    ended, booking = n.CONVERSATIONS_ENDED, [promql.purpose_matcher()]
    return (
        f"{increase(ended, window, by, matchers=booking, outcome=CONFIRMED)} / "
        f"{increase(ended, window, by, matchers=booking)}"
    )


def conversion_all_sessions(window: str) -> str:
    """The manual's figure: confirmed share of every ended conversation, whatever it was for."""
    ended = n.CONVERSATIONS_ENDED
    return f"{increase(ended, window, outcome=CONFIRMED)} / {increase(ended, window)}"


# --------------------------------------------------------------------------- panels
@dataclass(frozen=True)
class Target:
    """One query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    exemplar: bool = False
    heatmap: bool = False

    def to_json(self, ref: str) -> dict[str, Any]:
        """Grafana's target object."""
        return {
            "datasource": PROMETHEUS,
            "refId": ref,
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "instant": self.instant,
            "exemplar": self.exemplar,
            "format": "heatmap" if self.heatmap else "time_series",
            "editorMode": "code",
        }


def steps(*pairs: tuple[str, float | None]) -> dict[str, Any]:
    """Absolute threshold steps, e.g. ``("red", None), ("green", 0.7)``."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]}


def conversion_steps() -> dict[str, Any]:
    """Red below the floor, orange below the target, green above."""
    return steps(("red", None), ("orange", tg.CONVERSION.floor), ("green", tg.CONVERSION.threshold))


def ceiling_steps(threshold: float) -> dict[str, Any]:
    """Green up to a ceiling, red past it."""
    return steps(("green", None), ("red", threshold))


@dataclass
class Panel:
    """A panel before layout: its kind, title, queries and field/option overrides."""

    kind: str
    title: str
    description: str
    targets: list[Target]
    width: int = 12
    height: int = PANEL_HEIGHT
    unit: str = "short"
    thresholds: dict[str, Any] = field(default_factory=lambda: steps(("green", None)))
    custom: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)

    def to_json(self, pid: int, x: int, y: int) -> dict[str, Any]:
        """Grafana's panel object at grid position (x, y)."""
        refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        return {
            "id": pid,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": PROMETHEUS,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {
                "defaults": {
                    "unit": self.unit,
                    "thresholds": self.thresholds,
                    "color": {"mode": "thresholds" if self.kind in SINGLE_VALUE else "palette-classic"},
                    "custom": self.custom,
                    **self.limits,
                },
                "overrides": [],
            },
            "options": self.options,
            "targets": [t.to_json(refs[i]) for i, t in enumerate(self.targets)],
        }


def timeseries(
    title: str, description: str, targets: list[Target], *, unit: str = "short",
    thresholds: dict[str, Any] | None = None, stack: bool = False, bars: bool = False,
    width: int = 12, percent: bool = False,
) -> Panel:
    """A time series panel; threshold lines drawn when ``thresholds`` is given."""
    custom: dict[str, Any] = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 20 if stack or bars else 0,
        "showPoints": "never",
        "spanNulls": True,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line" if thresholds else "off"},
    }
    return Panel(
        "timeseries", title, description, targets, width=width, unit=unit,
        thresholds=thresholds or steps(("green", None)), custom=custom,
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        limits={"min": 0, "max": 1} if percent else {"min": 0},
    )


def stat(title: str, description: str, target: Target, *, unit: str = "short",
         thresholds: dict[str, Any] | None = None, width: int = 4) -> Panel:
    """A single-value panel over the dashboard's time range."""
    return Panel(
        "stat", title, description, [target], width=width, height=STAT_HEIGHT, unit=unit,
        thresholds=thresholds or steps(("blue", None)),
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background" if thresholds else "value",
            "graphMode": "none",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        },
    )


def bargauge(title: str, description: str, targets: list[Target], *, width: int = 12) -> Panel:
    """Horizontal bars, one per query or series, in query order."""
    return Panel(
        "bargauge", title, description, targets, width=width,
        thresholds=steps(("blue", None)),
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "basic",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
        },
    )


def piechart(title: str, description: str, target: Target, *, width: int = 12) -> Panel:
    """Shares of a whole over the dashboard's time range."""
    return Panel(
        "piechart", title, description, [target], width=width,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "pieType": "donut",
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                       "values": ["value", "percent"]},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def heatmap(title: str, description: str, target: Target, *, width: int = 12) -> Panel:
    """A pre-bucketed histogram over time (Prometheus ``le`` buckets, not recalculated)."""
    return Panel(
        "heatmap", title, description, [target], width=width,
        options={
            "calculate": False,
            "yAxis": {"axisPlacement": "left", "unit": "none"},
            "rowsFrame": {"layout": "le"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5,
                      "fill": "dark-orange", "reverse": False},
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-9},
            "legend": {"show": True},
            "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
        },
    )


# --------------------------------------------------------------------------- rows
Section = tuple[str, list[Panel]]


def headline() -> Section:
    """Conversion, volume, bookings, live conversations and firing alerts over the range."""
    ended = n.CONVERSATIONS_ENDED
    target, floor = tg.percent(tg.CONVERSION.threshold), tg.percent(tg.CONVERSION.floor or 0)
    firing = (
        'count(ALERTS{alertstate="firing",alertname=~"Rdv.*",'
        f'severity!="{a.SEVERITY_NONE}"}}) or vector(0)'
    )
    return "Headline", [
        stat("Conversion over the range", "Confirmed share of the ended conversations that came to "
             "book or move (or ended before saying what for); cancellations and information calls "
             f"are not counted. Red under the {floor} floor, orange under the {target} target.",
             Target(conversion(RANGE), instant=True),
             unit="percentunit", thresholds=conversion_steps()),
        stat("Conversion, all sessions (manual)", "The manual's rate: confirmed share of every "
             "ended conversation, cancellations and information calls included.",
             Target(conversion_all_sessions(RANGE), instant=True), unit="percentunit"),
        stat("Conversations ended", "Conversations that reached an outcome over the range.",
             Target(increase(ended, RANGE), instant=True)),
        stat("Bookings confirmed", "Conversations that ended with a confirmed appointment.",
             Target(increase(ended, RANGE, outcome=CONFIRMED), instant=True)),
        stat("Active conversations", "Conversations not yet ended, as last counted in the store.",
             Target(f"sum ({sel(n.ACTIVE_CONVERSATIONS)})", instant=True)),
        stat("Firing alerts", "rdv alerts firing now (the watchdog excluded).",
             Target(firing, instant=True), thresholds=ceiling_steps(1)),
    ]


def conversion_row() -> Section:
    """Conversion over the alert windows with its Wilson bound, and per channel over time."""
    return "Conversion", [
        timeseries(
            a.PANEL_CONVERSION,
            "Recorded by the alert rules, per channel and window, with the Wilson upper bound "
            "that must also be under a line before an alert fires.",
            [Target(recorded("conversion", "ratio"), "{{channel}} {{window}}"),
             Target(recorded("conversion", "wilson_upper"), "{{channel}} {{window}} Wilson upper")],
            unit="percentunit", thresholds=conversion_steps(), percent=True,
        ),
        timeseries(
            "Conversations started per channel", "New conversations per second, by channel.",
            [Target(f"sum by ({n.L_CHANNEL}) (rate({sel(n.CONVERSATIONS_STARTED)}[{RATE_INTERVAL}]))",
                    "{{channel}}")],
            unit="reqps",
        ),
        bargauge("Conversations by purpose", "Ended conversations over the range by what they "
                 "were for: book, move and undeclared make the conversion population; cancel and "
                 "information are counted apart.",
                 [Target(increase(n.CONVERSATIONS_ENDED, RANGE, n.L_PURPOSE), "{{purpose}}", instant=True)]),
        bargauge("Test conversations (probe, simulate) over the range", "Conversations of rdv probe "
                 "and rdv simulate (ids synthetic-…), by outcome: counted here and in no other panel.",
                 [Target(increase(n.SYNTHETIC_CONVERSATIONS, RANGE, n.L_OUTCOME), "{{outcome}}", instant=True)]),
    ]


def funnel_row() -> Section:
    """Entries per funnel state in the seed's order, transfers by origin, outcomes."""
    transitions = n.STATE_TRANSITIONS
    bars = [Target(increase(n.CONVERSATIONS_STARTED, RANGE), FUNNEL[0].value, instant=True)]
    bars += [
        Target(increase(transitions, RANGE, to_state=state.value), state.value, instant=True)
        for state in FUNNEL[1:]
    ]
    return "Funnel and outcomes", [
        bargauge("Funnel by state", "Conversations entering each state of the happy path over "
                 "the range (START = conversations started).", bars, width=8),
        bargauge("Transfers by state of origin", "Where conversations were handed to a human "
                 "(seed 5.3 B: the last state before TRANSFERRED).",
                 [Target(increase(transitions, RANGE, "from_state", to_state=State.TRANSFERRED.value),
                         "{{from_state}}", instant=True)], width=8),
        bargauge("Where calls stop", "Conversations that ended without a result of their own "
                 "(caller hung up, session expired), by the state they stopped in (seed 5.3 A).",
                 [Target(increase(n.CONVERSATIONS_STOPPED, RANGE, n.L_STATE), "{{state}}", instant=True)],
                 width=8),
        piechart("Outcomes over the range", "How conversations ended.",
                 Target(increase(n.CONVERSATIONS_ENDED, RANGE, n.L_OUTCOME), "{{outcome}}", instant=True),
                 width=8),
        timeseries("Conversations ended by outcome", "Ended conversations per interval, stacked.",
                   [Target(increase(n.CONVERSATIONS_ENDED, RATE_INTERVAL, n.L_OUTCOME), "{{outcome}}")],
                   stack=True, bars=True),
        timeseries("State transitions", "Transitions per second, by from and to state.",
                   [Target(f"sum by (from_state, to_state) (rate({sel(transitions)}[{RATE_INTERVAL}]))",
                           "{{from_state}} → {{to_state}}")],
                   unit="reqps"),
    ]


def booking_row() -> Section:
    """Booking failures, retries and the slot-taken share."""
    attempts = n.BOOKING_ATTEMPTS
    failures = sel(attempts, matchers=[f'{n.L_RESULT}!="{BookingResult.SUCCESS.value}"'])
    return "Booking", [
        timeseries("Booking failures by result", "Attempts that did not book (slot_taken: lost "
                   "race between proposal and booking; error: the store failed).",
                   [Target(f"sum by ({n.L_RESULT}) (increase({failures}[{RATE_INTERVAL}]))", "{{result}}"),
                    Target(increase(n.BOOKING_RETRIES, RATE_INTERVAL), "retries")],
                   bars=True, width=8),
        timeseries("Booking attempts by result", "Every booking attempt, by result.",
                   [Target(increase(attempts, RATE_INTERVAL, n.L_RESULT), "{{result}}")],
                   stack=True, bars=True, width=8),
        timeseries(a.PANEL_SLOT_TAKEN, "Recorded slot-taken share and its Wilson lower bound.",
                   [Target(recorded("slot_taken", "ratio"), "{{channel}} {{window}}"),
                    Target(recorded("slot_taken", "wilson_lower"), "{{channel}} {{window}} Wilson lower")],
                   unit="percentunit", thresholds=ceiling_steps(tg.SLOT_TAKEN.threshold), width=8),
    ]


def guards_row() -> Section:
    """Anti-loop, recovery by field, interruptions, intent overrides, fillers and expiries."""
    return "Anti-loop, recovery and interruptions", [
        timeseries(a.PANEL_ANTI_LOOP, "Recorded anti-loop share of ended conversations and its "
                   "Wilson lower bound; hits per interval.",
                   [Target(recorded("anti_loop", "ratio"), "{{channel}} {{window}}"),
                    Target(recorded("anti_loop", "wilson_lower"), "{{channel}} {{window}} Wilson lower")],
                   unit="percentunit", thresholds=ceiling_steps(tg.ANTI_LOOP.threshold), width=8),
        timeseries("Anti-loop hits", "Conversations switched to the fallback menu.",
                   [Target(increase(n.ANTI_LOOP, RATE_INTERVAL, n.L_CHANNEL), "{{channel}}")],
                   bars=True, width=8),
        timeseries(a.PANEL_PHONE_RECOVERY, "Recorded share of callers asked for a number who "
                   "reached the phone recovery limit, and its Wilson lower bound.",
                   [Target(recorded("phone_recovery", "ratio"), "{{channel}} {{window}}"),
                    Target(recorded("phone_recovery", "wilson_lower"),
                           "{{channel}} {{window}} Wilson lower")],
                   unit="percentunit", thresholds=ceiling_steps(tg.PHONE_RECOVERY.threshold), width=8),
        timeseries("Recovery limits reached by field", "Conversations sent to transfer or menu "
                   "after too many ununderstood answers.",
                   [Target(increase(n.RECOVERY_LIMITS, RATE_INTERVAL, n.L_FIELD), "{{field}}")],
                   bars=True, width=8),
        timeseries("Recovery prompts by field", "Clarifying re-asks of a field.",
                   [Target(increase(n.RECOVERY_PROMPTS, RATE_INTERVAL, n.L_FIELD), "{{field}}")],
                   bars=True, width=8),
        timeseries("Interruptions, intent overrides, fillers, expiries",
                   "Positive barge-ins, strong intents that pre-empted a state, filler-only turns "
                   "and idle conversations that expired.",
                   [Target(increase(n.INTERRUPTIONS, RATE_INTERVAL), "interruptions"),
                    Target(increase(n.INTENT_OVERRIDES, RATE_INTERVAL, n.L_INTENT), "override {{intent}}"),
                    Target(increase(n.FILLERS, RATE_INTERVAL), "fillers"),
                    Target(increase(n.SESSION_EXPIRIES, RATE_INTERVAL), "expiries")],
                   bars=True, width=8),
    ]


def transfers_row() -> Section:
    """Why calls were handed over to a human, and the no-slot share the alert watches."""
    return "Transfers", [
        timeseries(a.PANEL_TRANSFERS, "Calls handed over to a human, by reason (no_slot: nothing "
                   "free matched the caller's preference in the horizon).",
                   [Target(increase(n.TRANSFERS, RATE_INTERVAL, n.L_REASON), "{{reason}}")],
                   stack=True, bars=True, width=8),
        bargauge("Transfers by reason over the range", "Transfers per reason over the range.",
                 [Target(increase(n.TRANSFERS, RANGE, n.L_REASON), "{{reason}}", instant=True)], width=8),
        timeseries(a.PANEL_NO_SLOT, "Share of ended conversations transferred because no slot was "
                   "free (live, and the recorded alert window with its Wilson lower bound).",
                   [Target(promql.SHARES[tg.NO_SLOT.share].expr(RATE_INTERVAL, select), "{{channel}}"),
                    Target(recorded("no_slot", "ratio"), "{{channel}} {{window}} (alert window)"),
                    Target(recorded("no_slot", "wilson_lower"), "{{channel}} {{window}} Wilson lower")],
                   unit="percentunit", thresholds=ceiling_steps(tg.NO_SLOT.threshold), width=8),
    ]


def slots_row() -> Section:
    """Slot-message length distribution and the share over the TTS threshold."""
    metric = n.SLOTS_MESSAGE_LENGTH
    return "Slot messages", [
        heatmap("Slot-message length distribution", "Characters per slot message, by bucket, "
                f"over time; the {n.LONG_SLOT_MESSAGE_CHARS} edge is a bucket boundary.",
                Target(increase(metric, RATE_INTERVAL, "le", f"{metric.name}_bucket"), "{{le}}",
                       heatmap=True, exemplar=True), width=8),
        bargauge("Slot-message length over the range", "Slot messages per length bucket over "
                 "the range (upper edge in characters).",
                 [Target(increase(metric, RANGE, "le", f"{metric.name}_bucket"), "≤ {{le}}",
                         instant=True, heatmap=True)], width=8),
        timeseries(a.PANEL_LONG_SLOTS,
                   f"Share of slot messages longer than {n.LONG_SLOT_MESSAGE_CHARS} characters, per "
                   "channel (the alert watches voice, where the TTS may cut them).",
                   [Target(long_slot_share(RATE_INTERVAL), "{{channel}}"),
                    Target(recorded("long_slot_messages", "ratio"), "{{channel}} {{window}} (alert window)")],
                   unit="percentunit", thresholds=ceiling_steps(tg.LONG_SLOT_MESSAGES.threshold),
                   percent=True, width=8),
    ]


def health_row() -> Section:
    """Is rdv scraped, how turns are answered, whether the store answers."""
    responses = n.TURN_RESPONSES
    code_5xx = f'{n.L_CODE}="5xx"'
    errors = increase(responses, RATE_INTERVAL, matchers=[code_5xx])
    return "Service health", [
        timeseries(a.PANEL_SCRAPE, "1 while Prometheus scrapes the rdv target, 0 when it cannot.",
                   [Target(f'{n.SCRAPE_UP}{{job="{n.SCRAPE_JOB}",instance=~"$instance"}}', "{{instance}}")], width=6),
        timeseries("Turns answered by status", "Caller turns per interval by HTTP status class.",
                   [Target(increase(responses, RATE_INTERVAL, n.L_CODE), "{{code}}")], stack=True, bars=True, width=6),
        timeseries(a.PANEL_SERVER_ERRORS, "Share of caller turns answered with a server error.",
                   [Target(f"{errors} / {increase(responses, RATE_INTERVAL)}", "5xx share")],
                   unit="percentunit", thresholds=ceiling_steps(n.SERVER_ERROR_SHARE_MAX), width=6),
        timeseries(a.PANEL_STORE, "Store calls that failed or timed out (503, or apology and transfer); "
                   "spans the exporter process could not take (traces incomplete, turns unaffected).",
                   [Target(increase(n.STORE_UNAVAILABLE, RATE_INTERVAL), "store unavailable"),
                    Target(increase(n.SPANS_DROPPED, RATE_INTERVAL), "spans dropped")], bars=True, width=6),
    ]


def latency_row() -> Section:
    """Turn latency quantiles with trace exemplars, and turns per conversation."""
    turns = n.CONVERSATION_TURNS
    turns_buckets = sel(turns, f"{turns.name}_bucket")
    return "Latency and Vapi", [
        timeseries("Turn latency p50 / p95 / p99", "Time to answer a caller turn; exemplar dots "
                   "open the conversation's trace.",
                   [Target(quantile(q, n.TURN_DURATION), f"p{round(q * 100)}", exemplar=True)
                    for q in (0.5, 0.95, 0.99)], unit="s", width=8),
        timeseries("Turns per conversation (median) by outcome", "Caller turns of ended "
                   "conversations; long confirmed calls hint at hard understanding.",
                   [Target(f"histogram_quantile(0.5, sum by (le, {n.L_OUTCOME}) "
                           f"(rate({turns_buckets}[{RATE_INTERVAL}])))", "{{outcome}}")], width=8),
        timeseries("Vapi ended reasons", "Why Vapi calls ended, by category (vapi-protocol.md §3).",
                   [Target(increase(n.VAPI_ENDED_REASONS, RATE_INTERVAL, n.L_CATEGORY), "{{category}}")],
                   stack=True, bars=True, width=8),
    ]


def by_revision(metric: n.Metric, series: str | None = None) -> str:
    """``metric``'s rate per engine revision: each instance's series joined to its build info."""
    info = f'{n.BUILD_INFO.name}{{instance=~"$instance"}}'
    return (f"sum by ({n.L_ENGINE_REVISION}) (rate({sel(metric, series)}[{RATE_INTERVAL}]) "
            f"* on (instance, job) group_left ({n.L_ENGINE_REVISION}) {info})")


def misses_row() -> Section:
    """Not understood: the share of turns against last week, by state and field, top reasons,
    and by engine revision."""
    misses, turns = n.UNDERSTANDING_MISSES, f"{n.TURN_DURATION.name}_count"
    total_turns = f"scalar({increase(n.TURN_DURATION, RANGE, series=turns)})"
    ratio = recorded(a.MISSES_KEY, "ratio")
    return "Not understood", [
        timeseries(a.PANEL_MISS_SHARE, "Share of caller turns the engine could not use (re-asks, help and "
                   "menu prompts, recovery limits) over the alert window, the same hour a week earlier, and "
                   "twice that: the alert line (`rdv misses` lists the utterances).",
                   [Target(ratio, "{{channel}} {{window}}"),
                    Target(f"{ratio} offset {a.RuleParams().misses_baseline_offset}", "{{channel}} a week earlier"),
                    Target(f"{n.MISS_SHARE_GROWTH:g} * clamp_min({ratio} offset "
                           f"{a.RuleParams().misses_baseline_offset}, {n.MISS_SHARE_BASELINE_FLOOR:g})",
                           "{{channel}} alert line")],
                   unit="percentunit", width=8),
        bargauge("Not understood by state and field", "Misses of each field asked in each state, as a share "
                 "of every caller turn over the range.",
                 [Target(f"{increase(misses, RANGE, f'{n.L_STATE}, {n.L_FIELD}')} / {total_turns}",
                         "{{state}} {{field}}", instant=True)], width=8),
        bargauge("Top not-understood reasons", "The five most frequent (field, reason) pairs over the range.",
                 [Target(f"topk(5, {increase(misses, RANGE, f'{n.L_FIELD}, {n.L_REASON}')})",
                         "{{field}} {{reason}}", instant=True)], width=8),
        timeseries("Not-understood share by engine revision", "Misses per caller turn, split by the engine "
                   "revision (rdv_build_info) of the instance that answered: did it change with a deploy?",
                   [Target(f"{by_revision(misses)} / {by_revision(n.TURN_DURATION, turns)}", "{{engine_revision}}")],
                   unit="percentunit", width=12),
        timeseries("Misses by field", "Caller turns not understood per interval, by field asked.",
                   [Target(increase(misses, RATE_INTERVAL, n.L_FIELD), "{{field}}")], bars=True, stack=True,
                   width=12),
    ]



def calendar_row() -> Section:
    """Requests to the practice's external calendar: failures, results and latency."""
    requests = n.CALENDAR_REQUESTS
    duration = n.CALENDAR_DURATION
    buckets = sel(duration, f"{duration.name}_bucket")
    return "Practice calendar", [
        timeseries(a.PANEL_CALENDAR, "Recorded share of calendar requests that failed (error, "
                   "timeout, unreachable) and its Wilson lower bound; the page fires above "
                   f"{tg.percent(tg.CALENDAR_FAILURES.alerts[0].threshold)}.",
                   [Target(a.record_name("calendar_failures", "ratio"), "{{window}}"),
                    Target(a.record_name("calendar_failures", "wilson_lower"), "{{window}} Wilson lower")],
                   unit="percentunit", thresholds=ceiling_steps(tg.CALENDAR_FAILURES.threshold), width=8),
        timeseries("Calendar requests by operation and result", "Requests to the practice's calendar "
                   "(conflict: the slot was taken there, a lost race).",
                   [Target(increase(requests, RATE_INTERVAL, f"{n.L_OPERATION}, {n.L_RESULT}"),
                           "{{operation}} {{result}}")], stack=True, bars=True, width=8),
        timeseries("Calendar request latency p50 / p99", "Time of one calendar request, all operations.",
                   [Target(f"histogram_quantile({q}, sum by (le) (rate({buckets}[{RATE_INTERVAL}])))",
                           f"p{round(q * 100)}") for q in (0.5, 0.99)], unit="s", width=8),
    ]



SECTIONS: Final = (
    headline, conversion_row, funnel_row, booking_row, transfers_row, guards_row, misses_row, slots_row,
    health_row, latency_row, calendar_row,
)


# --------------------------------------------------------------------------- dashboard
def _layout() -> Iterator[dict[str, Any]]:
    """Rows and panels with ids and grid positions, left to right, top to bottom."""
    pid, y = 1, 0
    for make in SECTIONS:
        title, panels = make()
        yield {"id": pid, "type": "row", "title": title, "collapsed": False,
               "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "panels": []}
        pid, y, x, height = pid + 1, y + 1, 0, 0
        for panel in panels:
            if x + panel.width > GRID_WIDTH:
                x, y, height = 0, y + height, 0
            yield panel.to_json(pid, x, y)
            pid, x, height = pid + 1, x + panel.width, max(height, panel.height)
        y += height


def _variable(name: str, label: str, options: Sequence[str], query: str | None) -> dict[str, Any]:
    """A multi-value variable with an "All" option matching everything (``.*``)."""
    base: dict[str, Any] = {
        "name": name,
        "label": label,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
    }
    if query is None:
        base.update({
            "type": "custom",
            "query": ",".join(options),
            "options": [{"selected": False, "text": o, "value": o} for o in options],
        })
    else:
        base.update({
            "type": "query",
            "datasource": PROMETHEUS,
            "definition": query,
            "query": {"query": query, "refId": f"{name}-variable"},
            "refresh": 2,
            "sort": 1,
            "regex": "",
            "options": [],
        })
    return base


def variable_queries() -> dict[str, str]:
    """The template variables backed by a Prometheus query (``label_values``), by name."""
    return {"instance": f"label_values({n.BUILD_INFO.name}, instance)"}


def alert_annotation_expr() -> str:
    """The annotation query: rdv alerts while they fire (the watchdog excluded)."""
    return f'ALERTS{{alertstate="firing",alertname=~"Rdv.*",severity!="{a.SEVERITY_NONE}"}}'


def dashboard() -> dict[str, Any]:
    """The overview dashboard as Grafana JSON."""
    target, floor = tg.percent(tg.CONVERSION.threshold), tg.percent(tg.CONVERSION.floor or 0)
    return {
        "uid": DASHBOARD_UID,
        "title": "rdv — overview",
        "description": f"Conversion against the {target} target and {floor} floor, the funnel, booking "
                       "failures, guards, slot messages, latency and Vapi end reasons.",
        "tags": ["rdv", "generated"],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "browser",
        "links": [],
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
             "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
             "type": "dashboard"},
            {"datasource": PROMETHEUS, "enable": True, "hide": False, "iconColor": "red",
             "name": "rdv alerts", "expr": alert_annotation_expr(), "step": "60s",
             "titleFormat": "{{alertname}}", "textFormat": "{{channel}} {{severity}}",
             "useValueForTime": False},
        ]},
        "templating": {"list": [
            _variable(n.L_CHANNEL, "Channel", n.CHANNELS, None),
            _variable("instance", "Instance", (), variable_queries()["instance"]),
        ]},
        "panels": list(_layout()),
    }


def dashboard_queries() -> dict[str, str]:
    """Every PromQL expression of the dashboard, keyed ``panel title / refId`` (and the annotation)."""
    queries: dict[str, str] = {}
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            queries[f"{panel['title']} / {target['refId']}"] = target["expr"]
    queries["annotation / rdv alerts"] = alert_annotation_expr()
    return queries


_GRAFANA_VARIABLE = re.compile(r"\$(__rate_interval|__range|__interval|channel|instance)\b")


def expand(expr: str, *, range_: str = "1h", rate_interval: str = "1m",
           channel: str = ".*", instance: str = ".*") -> str:
    """``expr`` with Grafana's variables replaced as Grafana would for one time range and selection."""
    values = {"__rate_interval": rate_interval, "__range": range_, "__interval": rate_interval,
              "channel": channel, "instance": instance}
    return _GRAFANA_VARIABLE.sub(lambda m: values[m.group(1)], expr)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m telemetry.dashboards``: an alias of ``python -m telemetry.generate``."""
    from telemetry import generate  # the generator renders this module's data

    return generate.main(argv, prog="python -m telemetry.dashboards")


if __name__ == "__main__":
    raise SystemExit(main())
