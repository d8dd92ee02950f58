"""Prometheus rules and Alertmanager routing for the target table, generated from the contract.

``python -m telemetry.generate`` writes them (``python -m telemetry.alerts`` is an alias). The
alerts on shares come from the target table (:mod:`telemetry.targets`), their PromQL from
:mod:`telemetry.promql`, names and thresholds from :mod:`telemetry.names`; nothing here spells a
metric by hand.

Every target (the manual's section 5.7 and rdv's own) is a share over a window, recorded per
channel together with its volume ``n`` and its Wilson score bounds. An alert needs all three of:
the share past the threshold, the Wilson bound past it too (the whole confidence interval is on
the wrong side), and at least a minimum volume in the window. So three failed calls out of four
at night do not page, while fourteen out of twenty do. Recorded series carry a ``window`` label,
so the same names serve the production windows, the short windows of the end-to-end test and the
dashboards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from telemetry import names as n
from telemetry import targets as tg
from telemetry.promql import (
    SHARES,
    by_channel_increase,
    long_bucket_matcher,
    plain,
    record_name,
    selector,
)
from telemetry.promql import number as _number
from telemetry.targets import (
    ALERT_SPECS,
    SEVERITY_NONE,
    SEVERITY_PAGE,
    SEVERITY_WARNING,
    Z_ONE_SIDED_95,
    AlertSpec,
    RuleParams,
)

__all__ = [
    "ALERT_SPECS", "RATIOS", "SEVERITY_NONE", "SEVERITY_PAGE", "SEVERITY_WARNING", "Z_ONE_SIDED_95",
    "AlertSpec", "RuleParams", "long_bucket_matcher", "record_name",
]

RULES_FILE: Final = Path("alerts") / "rdv.rules.yml"
ALERTMANAGER_FILE: Final = Path("alerts") / "alertmanager.yml"
RUNBOOK_DIR: Final = Path(tg.RUNBOOK_DIR_NAME)

WATCHDOG: Final = "RdvWatchdog"
MISSES_ALERT: Final = "RdvNotUnderstoodDoubled"
CONVERSION_PAGE: Final = tg.CONVERSION.alerts[0].name
CONVERSION_WARNING: Final = tg.CONVERSION.alerts[1].name  # inhibited while the page fires
CALENDAR_PAGE: Final = tg.CALENDAR_FAILURES.alerts[0].name
# The shares the rules record (per channel and window).
RATIOS: Final = SHARES

@dataclass(frozen=True)
class AlertmanagerParams:
    """Receivers and timings of the Alertmanager configuration; placeholder URLs by default."""

    pager_url: str = "http://127.0.0.1:9095/pager"
    chat_url: str = "http://127.0.0.1:9095/chat"
    deadman_url: str = "http://127.0.0.1:9095/deadman"
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    page_repeat_interval: str = "1h"
    # The watchdog reaches the dead man's switch at least every 5 minutes: Alertmanager resends
    # at the first group tick (every 30 s) once 4m30s have passed since the last delivery.
    deadman_group_wait: str = "0s"
    deadman_group_interval: str = "30s"
    deadman_repeat_interval: str = "4m30s"


# --------------------------------------------------------------------------- alerts
# Dashboard panels the runbooks start from: the target table's (titles generated from it), then others.
PANEL_CONVERSION: Final = tg.CONVERSION.panel
PANEL_SLOT_TAKEN: Final = tg.SLOT_TAKEN.panel
PANEL_ANTI_LOOP: Final = tg.ANTI_LOOP.panel
PANEL_PHONE_RECOVERY: Final = tg.PHONE_RECOVERY.panel
PANEL_LONG_SLOTS: Final = tg.LONG_SLOT_MESSAGES.panel
PANEL_NO_SLOT: Final = tg.NO_SLOT.panel
PANEL_CALENDAR: Final = tg.CALENDAR_FAILURES.panel
PANEL_TRANSFERS: Final = "Transfers by reason"


@dataclass(frozen=True)
class ServiceAlert:
    """An alert on the service's own health (not a ratio of the seed's table)."""

    name: str
    expr: Callable[[RuleParams], str]
    duration: Callable[[RuleParams], str]
    severity: str
    summary: str
    description: str
    panel: str
    constants: tuple[str, ...]


PANEL_SCRAPE: Final = "Prometheus scrape of rdv (up)"
PANEL_LATENCY: Final = "Turn latency p50 / p95 / p99"
PANEL_SERVER_ERRORS: Final = f"Turns answered 5xx vs {n.SERVER_ERROR_SHARE_MAX * 100:g} %"
PANEL_STORE: Final = "Store unavailable"
PANEL_VAPI_REASONS: Final = "Vapi ended reasons"


def _up() -> str:
    return selector(n.SCRAPE_UP, job=n.SCRAPE_JOB)


def _turns(window: str, **labels: str) -> str:
    return f"sum(increase({selector(n.TURN_RESPONSES.name, **labels)}[{window}]))"


def _latency_p99(window: str) -> str:
    buckets = f"{n.TURN_DURATION.name}_bucket"
    return f"histogram_quantile(0.99, sum by (le) (rate({buckets}[{window}])))"


SERVICE_ALERTS: Final = (
    ServiceAlert(
        "RdvDown",
        lambda p: f"{_up()} == 0\nor\nabsent({_up()})",
        lambda p: p.down_for,
        SEVERITY_PAGE,
        "rdv is down or not scraped",
        "Prometheus could not scrape rdv ({{ $labels.instance }}) or has no rdv target at all: "
        "no call is answered, or none is watched.",
        PANEL_SCRAPE,
        ("RDV_STORE_TIMEOUT_SECONDS",),
    ),
    ServiceAlert(
        "RdvTurnLatencyHigh",
        lambda p: (
            f"{_latency_p99(p.service_window)} > {_number(n.TURN_LATENCY_P99_BUDGET_SECONDS)}\n"
            f"and on ()\n{_turns(p.service_window)} >= {p.min_turns}"
        ),
        lambda p: p.latency_for,
        SEVERITY_WARNING,
        "Caller turns answered slowly",
        "The 99th percentile of the time to answer a caller turn is {{ $value | humanizeDuration }} "
        f"over the last 5 minutes (budget {n.TURN_LATENCY_P99_BUDGET_SECONDS:g} s): callers hear silence.",
        PANEL_LATENCY,
        ("RDV_STORE_TIMEOUT_SECONDS",),
    ),
    ServiceAlert(
        "RdvServerErrorsHigh",
        lambda p: (
            f"{_turns(p.service_window, code='5xx')}\n/\n{_turns(p.service_window)}\n"
            f"> {_number(n.SERVER_ERROR_SHARE_MAX)}\nand on ()\n{_turns(p.service_window)} >= {p.min_turns}"
        ),
        lambda p: p.errors_for,
        SEVERITY_PAGE,
        "Caller turns failing with 5xx",
        "{{ $value | humanizePercentage }} of the caller turns were answered with a server error over "
        f"the last 5 minutes (at most {n.SERVER_ERROR_SHARE_MAX * 100:g} %).",
        PANEL_SERVER_ERRORS,
        ("RDV_STORE_TIMEOUT_SECONDS",),
    ),
    ServiceAlert(
        "RdvVapiCustomLlmErrors",
        lambda p: (
            f"sum(increase({selector(n.VAPI_ENDED_REASONS.name, category='custom_llm_error')}[{p.vapi_window}]))"
            f" > {n.VAPI_LLM_ERRORS_MAX}"
        ),
        lambda p: "0m",
        SEVERITY_WARNING,
        "Vapi ended calls because rdv did not answer",
        "{{ $value | humanize }} Vapi calls ended with a custom-LLM error over the last 15 minutes "
        f"(more than {n.VAPI_LLM_ERRORS_MAX}): Vapi did not get rdv's answer in time or could not read it.",
        PANEL_VAPI_REASONS,
        ("RDV_STORE_TIMEOUT_SECONDS", "RDV_VAPI_LLM_KEY"),
    ),
    ServiceAlert(
        "RdvStoreUnavailable",
        lambda p: f"sum(increase({n.STORE_UNAVAILABLE.name}[{p.service_window}])) > 0",
        lambda p: p.store_for,
        SEVERITY_PAGE,
        "The store is unavailable",
        "{{ $value | humanize }} store calls failed or timed out over the last 5 minutes: callers "
        "hear an apology and are transferred, the text API answers 503.",
        PANEL_STORE,
        ("RDV_STORE_TIMEOUT_SECONDS", "RDV_DATABASE_URL"),
    ),
)


def alert_names() -> tuple[str, ...]:
    """Every alert the rules define, the watchdog included."""
    return (*(spec.name for spec in ALERT_SPECS), *(s.name for s in SERVICE_ALERTS), MISSES_ALERT, WATCHDOG)


def runbook_path(alert: str) -> Path:
    """Where the runbook of ``alert`` lives, relative to the repository."""
    return RUNBOOK_DIR / f"{alert}.md"


def spec_window(spec: AlertSpec, params: RuleParams) -> str:
    """The main window an alert judges its ratio over."""
    return params.page_window if spec.page else params.warning_window


def _windows_needed(params: RuleParams) -> list[tuple[str, str]]:
    """(ratio, window) pairs to record, in a stable order and without duplicates."""
    pairs: dict[tuple[str, str], None] = {}
    for spec in ALERT_SPECS:
        pairs[(spec.ratio, spec_window(spec, params))] = None
        if spec.page:
            pairs[(spec.ratio, params.page_short_window)] = None
    return list(pairs)


# --------------------------------------------------------------------------- rules
def _wilson(ratio: str, window: str, z: float, upper: bool) -> str:
    """Wilson score bound of the recorded ratio and volume (NaN while the volume is 0)."""
    matcher = f'{{window="{window}"}}'
    p = f"clamp({record_name(ratio, 'ratio')}{matcher}, 0, 1)"
    count = f"{record_name(ratio, 'n')}{matcher}"
    z2 = z * z
    sign = "+" if upper else "-"
    return (
        f"(\n  {p} + {_number(z2 / 2)} / {count}\n"
        f"  {sign} {_number(z)} * sqrt({p} * (1 - {p}) / {count} + {_number(z2 / 4)} / ({count} ^ 2))\n"
        f")\n/ (1 + {_number(z2)} / {count})"
    )


def recording_rules(params: RuleParams) -> list[dict[str, Any]]:
    """Volume, ratio and both Wilson bounds of every (ratio, window) the alerts use."""
    rules: list[dict[str, Any]] = []
    for key, window in _windows_needed(params):
        ratio = RATIOS[key]
        labels = {"window": window}
        rules += [
            {"record": record_name(key, "n"), "expr": ratio.total(window, plain), "labels": labels},
            {
                "record": record_name(key, "ratio"),
                "expr": f"(\n  {ratio.events(window, plain)}\n)\n/\n(\n  {ratio.total(window, plain)}\n)",
                "labels": labels,
            },
            {"record": record_name(key, "wilson_lower"), "expr": _wilson(key, window, params.z, False),
             "labels": labels},
            {"record": record_name(key, "wilson_upper"), "expr": _wilson(key, window, params.z, True),
             "labels": labels},
        ]
    return rules


# --------------------------------------------------------------------------- not understood
MISSES_KEY: Final = "understanding_misses"
TURNS_KEY: Final = "understanding_turns"
PANEL_MISS_SHARE: Final = "Not-understood share of turns vs the same hour a week earlier"


def _turns_by_channel(window: str) -> str:
    return by_channel_increase(f"{n.TURN_DURATION.name}_count", window)


def _misses(window: str) -> str:
    # No miss yet is a share of 0, not an absent series: the turns' zero stands in for it.
    return (f"(\n  {by_channel_increase(n.UNDERSTANDING_MISSES.name, window)}\n  or\n  "
            f"{_turns_by_channel(window)} * 0\n)")


def misses_rules(params: RuleParams) -> list[dict[str, Any]]:
    """Caller turns and the not-understood share of them, per channel, over the misses window."""
    labels = {"window": params.misses_window}
    return [
        {"record": record_name(TURNS_KEY, "n"), "expr": _turns_by_channel(params.misses_window), "labels": labels},
        {"record": record_name(MISSES_KEY, "ratio"),
         "expr": f"{_misses(params.misses_window)}\n/\n(\n  {_turns_by_channel(params.misses_window)}\n)",
         "labels": labels},
    ]


def misses_alert_expr(params: RuleParams) -> str:
    """The share over the growth factor times the share of the same hour a week earlier (a
    baseline under the floor counts as the floor), with enough turns in both hours."""
    matcher = f'{{window="{params.misses_window}"}}'
    ratio, turns = record_name(MISSES_KEY, "ratio") + matcher, record_name(TURNS_KEY, "n") + matcher
    week = params.misses_baseline_offset
    return (
        f"{ratio}\n  > {_number(n.MISS_SHARE_GROWTH)} * clamp_min({ratio} offset {week}, "
        f"{_number(n.MISS_SHARE_BASELINE_FLOOR)})\n"
        f"and on ({n.L_CHANNEL})\n{turns} >= {params.min_turns_misses}\n"
        f"and on ({n.L_CHANNEL})\n{turns} offset {week} >= {params.min_turns_misses}"
    )


def misses_alert(params: RuleParams) -> dict[str, Any]:
    """The not-understood share doubled against the same hour a week earlier (warning)."""
    return {
        "alert": MISSES_ALERT,
        "expr": misses_alert_expr(params),
        "for": params.misses_for,
        "labels": {"severity": SEVERITY_WARNING},
        "annotations": {
            "summary": "Callers not understood twice as often as a week ago on {{ $labels.channel }}",
            "description": "{{ $value | humanizePercentage }} of the {{ $labels.channel }} caller turns were not "
                           "understood over the last {{ $labels.window }}, more than twice the share of the same "
                           "hour a week earlier.",
            "runbook_url": f"{params.runbook_base}/{MISSES_ALERT}.md",
        },
    }


def alert_expr(spec: AlertSpec, params: RuleParams) -> str:
    """Ratio past the threshold, Wilson bound past it too, volume above the floor (value: ratio)."""
    window = spec_window(spec, params)
    only = f',{n.L_CHANNEL}="{spec.channel}"' if spec.channel else ""
    matcher = f'{{window="{window}"{only}}}'
    op = ">" if spec.above else "<"
    bound = "wilson_lower" if spec.above else "wilson_upper"
    threshold = _number(spec.threshold)
    parts = [
        f"{record_name(spec.ratio, 'ratio')}{matcher} {op} {threshold}",
        f"{record_name(spec.ratio, bound)}{matcher} {op} {threshold}",
        f"{record_name(spec.ratio, 'n')}{matcher} >= {spec.min_events(params)}",
    ]
    if spec.page:
        short = f'{{window="{params.page_short_window}"{only}}}'
        parts.append(f"{record_name(spec.ratio, 'ratio')}{short} {op} {threshold}")
    return f"\nand on ({n.L_CHANNEL})\n".join(parts)


def alerting_rules(params: RuleParams) -> list[dict[str, Any]]:
    """The alerts of the seed's target table, then the always-firing watchdog."""
    rules: list[dict[str, Any]] = []
    for spec in ALERT_SPECS:
        rules.append({
            "alert": spec.name,
            "expr": alert_expr(spec, params),
            "for": params.page_for if spec.page else params.warning_for,
            "labels": {"severity": spec.severity},
            "annotations": {
                "summary": spec.summary,
                "description": spec.description,
                "runbook_url": f"{params.runbook_base}/{spec.name}.md",
            },
        })
    for alert in SERVICE_ALERTS:
        rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr(params)}
        if alert.duration(params) not in ("0m", "0s"):
            rule["for"] = alert.duration(params)
        rules.append({
            **rule,
            "labels": {"severity": alert.severity},
            "annotations": {
                "summary": alert.summary,
                "description": alert.description,
                "runbook_url": f"{params.runbook_base}/{alert.name}.md",
            },
        })
    rules.append({
        "alert": WATCHDOG,
        "expr": "vector(1)",
        "labels": {"severity": SEVERITY_NONE},
        "annotations": {
            "summary": "Always firing: proves that rules, Alertmanager and receivers work",
            "description": "The dead man's switch receiver must get this alert continuously; "
                           "its silence means the alerting pipeline is broken.",
            "runbook_url": f"{params.runbook_base}/{WATCHDOG}.md",
        },
    })
    return rules


def rule_groups(params: RuleParams) -> dict[str, Any]:
    """The whole rules file as data."""
    return {
        "groups": [
            {"name": "rdv.ratios", "rules": recording_rules(params)},
            {"name": "rdv.alerts", "rules": alerting_rules(params)},
            # One group, in order: the alert reads the ratio recorded the same instant (rules of
            # one group run one after the other; separate groups may not have run yet).
            {"name": "rdv.understanding", "rules": [*misses_rules(params), misses_alert(params)]},
        ]
    }


def recording_rule_names() -> frozenset[str]:
    """Every series name the recording rules create (what dashboards may reference besides raw series)."""
    return frozenset(
        record_name(key, kind) for key in RATIOS for kind in ("n", "ratio", "wilson_lower", "wilson_upper")
    ) | {record_name(TURNS_KEY, "n"), record_name(MISSES_KEY, "ratio")}


# --------------------------------------------------------------------------- alertmanager
def _webhook(name: str, url: str) -> dict[str, Any]:
    return {"name": name, "webhook_configs": [{"url": url, "send_resolved": True}]}


def alertmanager_config(params: AlertmanagerParams) -> dict[str, Any]:
    """Routing: critical pages, warnings go to chat, the watchdog to the dead man's switch."""
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "chat",
            "group_by": ["alertname"],
            "group_wait": params.group_wait,
            "group_interval": params.group_interval,
            "repeat_interval": params.repeat_interval,
            "routes": [
                {"receiver": "deadman", "matchers": [f'alertname="{WATCHDOG}"'],
                 "group_wait": params.deadman_group_wait, "group_interval": params.deadman_group_interval,
                 "repeat_interval": params.deadman_repeat_interval},
                {"receiver": "pager", "matchers": [f'severity="{SEVERITY_PAGE}"'],
                 "repeat_interval": params.page_repeat_interval},
                {"receiver": "chat", "matchers": [f'severity="{SEVERITY_WARNING}"']},
            ],
        },
        "receivers": [
            _webhook("pager", params.pager_url),
            _webhook("chat", params.chat_url),
            _webhook("deadman", params.deadman_url),
        ],
        "inhibit_rules": [
            {
                "source_matchers": [f'alertname="{CONVERSION_PAGE}"'],
                "target_matchers": [f'alertname="{CONVERSION_WARNING}"'],
                "equal": [n.L_CHANNEL],
            }
        ],
    }




def main(argv: Sequence[str] | None = None) -> int:
    """``python -m telemetry.alerts``: an alias of ``python -m telemetry.generate``."""
    from telemetry import generate  # the generator renders this module's data

    return generate.main(argv, prog="python -m telemetry.alerts")


if __name__ == "__main__":
    raise SystemExit(main())
