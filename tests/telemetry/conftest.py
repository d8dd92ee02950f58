"""Telemetry fixtures: an in-memory span exporter, its own metric registry, captured logs."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from telemetry import Telemetry

PHONE = "+33612345678"
BOOK = "bonjour je voudrais prendre rendez-vous"


class Captured:
    """One Telemetry instance with everything it emits kept for the test."""

    def __init__(self, log_format: str = "text", log_pii: bool = False,
                 exporter: InMemorySpanExporter | None = None) -> None:
        self.logs = io.StringIO()
        self.exporter = exporter or InMemorySpanExporter()
        self.registry = CollectorRegistry()
        self.telemetry = Telemetry.create(
            log_format=log_format,
            log_pii=log_pii,
            trace_secret=b"test-secret",
            version="test",
            registry=self.registry,
            span_exporter=self.exporter,
            log_stream=self.logs,
        )

    def lines(self) -> list[str]:
        """Every log line written so far."""
        return self.logs.getvalue().splitlines()

    def sample(self, name: str, **labels: str) -> float:
        """The current value of the series ``name`` with ``labels``, summed over the labels not
        given (0 when absent)."""
        return sum(
            s.value
            for family in self.registry.collect()
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


@pytest.fixture
def captured() -> Callable[..., Captured]:
    """Factory of captured telemetry: ``captured(log_format="json")``."""
    return Captured


async def book(live: Any, conv_id: str, choice: str = "le premier", clock: Any = None, **extra: Any) -> dict[str, Any]:
    """A full booking conversation through the text API, the caller taking 5 s per answer."""
    answer: dict[str, Any] = {}
    for text in (BOOK, "Jean Dupont", "pas de préférence", choice):
        if clock is not None:
            clock.advance(seconds=5)
        answer = await live.say(conv_id, text, caller_phone=PHONE, **extra)
    return answer
