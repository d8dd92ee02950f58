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
  pre-derived ids.

rdv's own spans are recorded as small records with these ids (:mod:`telemetry.spans`) and
exported by a process of their own (:mod:`telemetry.sidecar`).
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from telemetry.spans import DEFAULT_BATCH, LocalSink, RecordProcessor, SidecarSink, SpanSink, resource

_random_bits = random.getrandbits
# What ``OTEL_TRACES_EXPORTER`` may choose (read in ``service.config``): the sidecar's exporters.
EXPORTERS = ("otlp", "console")


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
    """A fresh random span id, for a state span allocated before it is emitted (the SDK's
    own generator draws from ``random`` too: an id needs to be unique, not secret, and
    ``os.urandom`` costs a system call per span)."""
    return _random_bits(64) or 1


def make_sink(
    version: str, exporter: SpanExporter | None, traces_exporter: str, on_drop: Callable[[int], None],
    batch: tuple[int, int] = DEFAULT_BATCH,
) -> SpanSink | None:
    """Where spans go: ``exporter`` in process (tests), else the sidecar process with the
    exporter ``OTEL_TRACES_EXPORTER`` chose (``otlp``, ``console``) and ``batch`` (most spans
    per export, longest wait in ms), else nowhere (None)."""
    if exporter is not None:
        return LocalSink(exporter, version)
    if traces_exporter in EXPORTERS:
        return SidecarSink(traces_exporter, version, on_drop, batch)
    return None


def make_provider(version: str, sink: SpanSink | None) -> TracerProvider:
    """The OpenTelemetry tracer provider of the spans made through its API (the ASGI
    middleware's, the calendar client's): they end in the same sink as rdv's own records.
    Its sampler (``OTEL_TRACES_SAMPLER``, read by the SDK) decides for rdv's spans too."""
    provider = TracerProvider(resource=resource(version))
    if sink is not None:
        provider.add_span_processor(RecordProcessor(sink))
    return provider


def sampler_decides(provider: TracerProvider) -> Callable[[int], bool] | None:
    """A function telling whether a conversation's trace is kept, from its trace id, or None
    when every trace is (the default sampler): one decision for the whole conversation."""
    sampler = provider.sampler
    described = sampler.get_description()
    if described.startswith(("AlwaysOnSampler", "ParentBased{root:AlwaysOnSampler")):
        return None

    def keep(trace_id: int) -> bool:
        decision = sampler.should_sample(None, trace_id, "conversation").decision
        return decision is Decision.RECORD_AND_SAMPLE

    return keep
