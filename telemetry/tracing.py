"""One trace per conversation, with ids derived from the conversation, not held in memory.

Every caller turn is a separate HTTP request, maybe on another replica or after a restart,
so no process can keep the conversation's root span open. Instead:

* ``trace_id`` (16 bytes) and the root span id (8 bytes) are the first 24 bytes of
  ``HMAC-SHA256(RDV_TRACE_SECRET, "<conv_id>:<epoch>")``; an operator who knows the secret
  can compute the trace of any conversation (``rdv`` prints it in the timeline as well).
* Spans of any request parent onto a non-recording, remote span context built from those
  ids, so they all land in the same trace.
* A state span's id is allocated when the state is entered and stored with the
  conversation; the span itself is emitted when the state is left, with its real times.
* The root span ``conversation`` is emitted once, when the conversation ends, with the
  pre-derived ids (the id generator below takes them from a context variable).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import os
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from telemetry import names as n

_FORCED: contextvars.ContextVar[tuple[int | None, int | None]] = contextvars.ContextVar(
    "rdv_forced_ids", default=(None, None)
)


class DerivedIdGenerator(IdGenerator):
    """Random ids, except for the spans whose ids were derived or allocated beforehand."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        """The forced span id when one is set for this span, else a random one."""
        forced = _FORCED.get()[1]
        return forced if forced is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        """The forced trace id when one is set (root span), else a random one."""
        forced = _FORCED.get()[0]
        return forced if forced is not None else self._random.generate_trace_id()


@contextlib.contextmanager
def forced_ids(trace_id: int | None, span_id: int | None) -> Iterator[None]:
    """Within the block, the next span created takes these ids."""
    token = _FORCED.set((trace_id, span_id))
    try:
        yield
    finally:
        _FORCED.reset(token)


def derive_ids(secret: bytes, conv_id: str, epoch: int) -> tuple[int, int]:
    """(trace id, root span id) of a conversation: the keyed hash's first 16 and next 8 bytes."""
    digest = hmac.new(secret, f"{conv_id}:{epoch}".encode(), hashlib.sha256).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return trace_id, span_id


def remote_parent(trace_id: int, span_id: int) -> Any:
    """A context whose current span is the (not yet emitted) span ``span_id`` of the trace."""
    ctx = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def new_span_id() -> int:
    """A fresh random span id, for a state span allocated before it is emitted."""
    return int.from_bytes(os.urandom(8), "big") or 1


def default_processor() -> SpanProcessor | None:
    """The exporter the environment asks for: OTLP when an endpoint is set, console, or none."""
    wanted = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if wanted == "none":
        return None
    if wanted == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter())
    if endpoint or wanted == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return BatchSpanProcessor(OTLPSpanExporter())
    return None


def make_provider(version: str, exporter: SpanExporter | None) -> tuple[TracerProvider, bool]:
    """A tracer provider with the derived-id generator; returns it and whether spans go anywhere."""
    resource = Resource.create({"service.name": n.SERVICE_NAME, "service.version": version})
    provider = TracerProvider(resource=resource, id_generator=DerivedIdGenerator())
    processor: SpanProcessor | None
    processor = SimpleSpanProcessor(exporter) if exporter is not None else default_processor()
    if processor is not None:
        provider.add_span_processor(processor)
    return provider, processor is not None
