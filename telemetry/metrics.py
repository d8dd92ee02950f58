"""Prometheus metrics built from the contract, on an injectable registry, children pre-bound.

Single process (the default: one uvicorn worker per process or container): an own
registry, exemplars with the conversation's trace id on histograms. Several workers:
set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before start (``rdv serve --workers``
does; the settings say so with ``multiprocess``); metrics are then aggregated across workers
by ``MultiProcessCollector`` and exemplars are off (the multiprocess mode does not support
them).

Children are cached by label tuple: the hot path looks a child up in a dict instead of
going through ``labels()`` each time.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from service import revision
from telemetry import names as n


def _allowed_transitions() -> list[tuple[str, str]]:
    from service.engine.table import TRANSITIONS

    return [(a.value, b.value) for a, targets in TRANSITIONS.items() for b in sorted(targets)]


class Metrics:
    """Every ``rdv_*`` metric of the contract, with its known label values initialised to 0."""

    def __init__(
        self, registry: CollectorRegistry | None, version: str, engine_revision: str | None = None,
        *, multiprocess: bool = False,
    ) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.multiprocess = multiprocess
        if self.multiprocess:
            from prometheus_client import multiprocess as prometheus_multiprocess

            self.registry = registry or CollectorRegistry()
            self._collect_registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(self._collect_registry)  # type: ignore[no-untyped-call]
            target: CollectorRegistry | None = None
        else:
            self.registry = registry or CollectorRegistry()
            self._collect_registry = self.registry
            target = self.registry
        self.exemplars = not self.multiprocess
        self.objects: dict[str, Any] = {}
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}
        for metric in n.METRICS:
            base = metric.name.removesuffix("_total") if metric.kind == "counter" else metric.name
            if metric.kind == "counter":
                obj: Any = Counter(base, metric.help, metric.labels, registry=target)
            elif metric.kind == "histogram":
                obj = Histogram(base, metric.help, metric.labels, buckets=metric.buckets, registry=target)
            else:
                obj = Gauge(base, metric.help, metric.labels, registry=target, multiprocess_mode="livemax")
            self.objects[metric.name] = obj
        self._initialise()
        self.objects[n.BUILD_INFO.name].labels(version, engine_revision or revision.engine_revision()).set(1)
        # Pre-bound children for the hot path.
        self.turn_duration = {c: self.objects[n.TURN_DURATION.name].labels(c) for c in n.CHANNELS}
        self.slots_length = {c: self.objects[n.SLOTS_MESSAGE_LENGTH.name].labels(c) for c in n.CHANNELS}
        self.started = {c: self.objects[n.CONVERSATIONS_STARTED.name].labels(c) for c in n.CHANNELS}
        self._dropped = self.objects[n.SPANS_DROPPED.name]

    def _initialise(self) -> None:
        values: Mapping[str, tuple[str, ...]] = n.LABEL_VALUES
        for metric in n.METRICS:
            if not metric.labels or metric.kind == "gauge":
                continue
            if metric is n.STATE_TRANSITIONS:
                for channel, (a, b) in itertools.product(n.CHANNELS, _allowed_transitions()):
                    self.objects[metric.name].labels(channel, a, b)
                continue
            if metric is n.CONVERSATIONS_STOPPED:
                for stopped in itertools.product(n.CHANNELS, n.STOPPED_OUTCOMES, n.STOP_STATES):
                    self.objects[metric.name].labels(*stopped)
                continue
            if metric is n.UNDERSTANDING_MISSES:
                for channel, (state, fld) in itertools.product(n.CHANNELS, n.MISS_SITES):
                    self.objects[metric.name].labels(channel, state, fld, n.MISS_SITE_REASON)
                continue
            if metric is n.INTENT_OVERRIDES:
                continue  # state × intent pairs appear as they happen; totals use sum()
            if metric.name in n.RESULT_VALUES:
                values = {**n.LABEL_VALUES, n.L_RESULT: n.RESULT_VALUES[metric.name]}
                for combo in itertools.product(*(values[label] for label in metric.labels)):
                    self.objects[metric.name].labels(*combo)
                continue
            for combo in itertools.product(*(values[label] for label in metric.labels)):
                self.objects[metric.name].labels(*combo)

    def child(self, metric: n.Metric, labels: tuple[str, ...]) -> Any:
        """The series of ``metric`` with ``labels`` (the metric itself without labels), cached."""
        key = (metric.name, labels)
        found = self._children.get(key)
        if found is None:
            obj = self.objects[metric.name]
            found = self._children[key] = obj.labels(*labels) if labels else obj
        return found

    def inc(self, metric: n.Metric, *labels: str) -> None:
        """Add one to a counter."""
        child = self._children.get((metric.name, labels))
        if child is None:
            child = self.child(metric, labels)
        child.inc()

    def observe(self, metric: n.Metric, value: float, trace_id: str | None, *labels: str) -> None:
        """Record a histogram observation, with a trace-id exemplar when supported."""
        child = self._children.get((metric.name, labels))
        if child is None:
            child = self.child(metric, labels)
        if self.exemplars and trace_id:
            child.observe(value, exemplar={"trace_id": trace_id})
        else:
            child.observe(value)

    def set(self, metric: n.Metric, value: float, *labels: str) -> None:
        """Set a gauge."""
        self.child(metric, labels).set(value)

    def spans_dropped(self, count: int) -> None:
        """Spans the exporter process could not take (it lags, or it is gone)."""
        self._dropped.inc(count)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The text exposition; OpenMetrics (with exemplars) when the scraper asks for it."""
        if accept and "application/openmetrics-text" in accept:
            return generate_openmetrics(self._collect_registry), OPENMETRICS_TYPE  # type: ignore[no-untyped-call]
        return generate_latest(self._collect_registry), CONTENT_TYPE_LATEST
