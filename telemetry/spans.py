"""Spans as small records on the turn path; OTLP built and encoded elsewhere.

A span of rdv's own (a turn, a state, a booking, the conversation) is a plain tuple, a
:data:`SpanRecord`: its ids are derived from the conversation or drawn when it is recorded,
so nothing of the OpenTelemetry SDK is needed to record it. The records go to a sink:

* :class:`SidecarSink` (the service): batched once per event-loop pass, marshalled and
  written to a pipe read by a process of its own (:mod:`telemetry.sidecar`), which rebuilds
  the SDK's spans and hands them to the SDK's own exporter (OTLP, console). Encoding never
  holds the serving process's GIL. When the sidecar lags, the pipe and a bounded buffer
  fill and further batches are dropped, counted in ``rdv_spans_dropped_total``; the turn
  never waits for it. On a clean stop everything written is exported before it exits; if
  the service dies, the sidecar reads the end of the pipe, exports what it has and exits.
* :class:`LocalSink` (tests, ``span_exporter=``): the same records rebuilt into the same SDK
  spans in process and given to the exporter at once (an in-memory exporter reads them).

Spans made through the OpenTelemetry API (the ASGI middleware of the other routes, the
calendar's client spans) reach the same sink through :class:`RecordProcessor`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import marshal
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from telemetry import names as n
from telemetry.passes import flush_at_end_of_pass

# (name, trace_id, span_id, parent_span_id (0: a root), parent_is_remote, kind, start_ns,
#  end_ns, attributes, status_code, status_description, events, scope_name, scope_version);
# an event is (name, timestamp_ns, attributes). Only types ``marshal`` writes.
SpanRecord = tuple[
    str, int, int, int, bool, int, int, int, dict[str, Any], int, "str | None",
    tuple[tuple[str, int, dict[str, Any]], ...], str, "str | None",
]
SCOPE = "rdv"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_KINDS = tuple(SpanKind)
_CODES = tuple(StatusCode)
_SCOPES: dict[tuple[str, str | None], InstrumentationScope] = {}

# A frame on the pipe: a 4-byte little-endian length, then ``marshal.dumps(list of records)``.
_HEADER = struct.Struct("<I")
# Written but not yet taken by the sidecar, beyond the pipe's own buffer: past this, batches
# are dropped (and counted) instead of queued.
MAX_PENDING_BYTES = 8 * 1024 * 1024
# The pipe's buffer is raised to this when the system allows it (Linux: fs.pipe-max-size).
PIPE_BYTES = 1024 * 1024
# The exporter process's batches by default: most spans per export, longest wait in ms
# (OTEL_BSP_MAX_EXPORT_BATCH_SIZE and OTEL_BSP_SCHEDULE_DELAY change them, in the settings).
DEFAULT_BATCH = (512, 1000)
# A sidecar that died is started again at most this often.
RESPAWN_SECONDS = 5.0


def record(
    name: str,
    trace_id: int,
    span_id: int,
    parent_id: int,
    start_ns: int,
    end_ns: int,
    attributes: dict[str, Any],
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    remote_parent: bool = True,
    status: StatusCode = StatusCode.UNSET,
    description: str | None = None,
) -> SpanRecord:
    """One of rdv's spans as a record (the parent, when there is one, is remote: a span of
    the conversation emitted by another request)."""
    # ``_value_``: the enum's value without the call of its ``value`` property.
    return (name, trace_id, span_id, parent_id, remote_parent, kind._value_, start_ns, end_ns, attributes,
            status._value_, description, (), SCOPE, None)


def readable(rec: SpanRecord, resource: Resource) -> ReadableSpan:
    """The SDK's span of a record, as its exporters take it."""
    (name, trace_id, span_id, parent_id, remote, kind, start, end, attrs, code, description, events,
     scope_name, scope_version) = rec
    scope = _SCOPES.get((scope_name, scope_version))
    if scope is None:
        scope = _SCOPES[(scope_name, scope_version)] = InstrumentationScope(scope_name, scope_version)
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED),
        parent=SpanContext(trace_id, parent_id, is_remote=remote, trace_flags=_SAMPLED) if parent_id else None,
        resource=resource,
        attributes=attrs,
        events=[Event(e_name, e_attrs, e_at) for e_name, e_at, e_attrs in events],
        kind=_KINDS[kind],
        status=Status(_CODES[code], description),
        start_time=start,
        end_time=end,
        instrumentation_scope=scope,
    )


def record_of(span: ReadableSpan) -> SpanRecord:
    """A span made through the OpenTelemetry API, as a record."""
    ctx = span.get_span_context()
    assert ctx is not None
    parent = span.parent
    scope = span.instrumentation_scope
    return (
        span.name, ctx.trace_id, ctx.span_id, parent.span_id if parent else 0,
        bool(parent and parent.is_remote), span.kind.value, span.start_time or 0, span.end_time or 0,
        dict(span.attributes or {}), span.status.status_code.value, span.status.description,
        tuple((e.name, e.timestamp, dict(e.attributes or {})) for e in span.events),
        scope.name if scope else SCOPE, scope.version if scope else None,
    )


class _HashedOnce(Resource):
    """A resource whose hash is computed once: the SDK's OTLP encoder groups spans by
    resource, hashing the resource of every span it encodes, and the SDK computes that hash
    by dumping the attributes as JSON each time. A resource's attributes never change."""

    _hash: int | None = None

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = super().__hash__()
        return self._hash


def resource(version: str) -> Resource:
    """The resource of every rdv span (``OTEL_RESOURCE_ATTRIBUTES`` adds to it, as the SDK reads)."""
    created = Resource.create({"service.name": n.SERVICE_NAME, "service.version": version})
    return _HashedOnce(created.attributes, created.schema_url)


class SpanSink(Protocol):
    """Where records go."""

    def emit(self, rec: SpanRecord) -> None:
        """Take one finished span."""

    def shutdown(self) -> None:
        """Export what was taken and stop."""


class LocalSink:
    """Records rebuilt and exported in process, at once (tests' in-memory exporter)."""

    def __init__(self, exporter: SpanExporter, version: str) -> None:
        self.exporter = exporter
        self.resource = resource(version)

    def emit(self, rec: SpanRecord) -> None:
        """Export one span now."""
        self.exporter.export([readable(rec, self.resource)])

    def shutdown(self) -> None:
        """Stop the exporter."""
        self.exporter.shutdown()


class SidecarSink:
    """Records batched per event-loop pass and written to the exporter process's pipe
    (``batch``: the exporter's most spans per export and longest wait, in ms).

    ``on_drop`` is told how many spans were dropped (the sidecar lags or is gone); writes
    never block the event loop.
    """

    def __init__(self, exporter: str, version: str, on_drop: Callable[[int], None],
                 batch: tuple[int, int] = DEFAULT_BATCH) -> None:
        self.exporter = exporter
        self.version = version
        self.on_drop = on_drop
        self.batch = batch
        self.proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._batch: list[SpanRecord] = []
        self._pending = bytearray()
        # [bytes of the frame not yet written, spans in it], oldest first: what a dead
        # sidecar did not take is counted as dropped.
        self._frames: collections.deque[list[int]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._writer = False
        self._started_at = -RESPAWN_SECONDS
        self._closed = False

    # -------------------------------------------------------------- process
    def _spawn(self) -> bool:
        """Start the sidecar (at most once per :data:`RESPAWN_SECONDS`); True when running."""
        if self.proc is not None and self.proc.poll() is None:
            return True
        now = time.monotonic()
        if now - self._started_at < RESPAWN_SECONDS:
            return False
        self._started_at = now
        self._close_pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "telemetry.sidecar", "--exporter", self.exporter, "--version", self.version,
             "--batch-size", str(self.batch[0]), "--delay-ms", str(self.batch[1])],
            stdin=subprocess.PIPE, close_fds=True,
        )
        assert self.proc.stdin is not None
        self._fd = self.proc.stdin.fileno()
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(self._fd, False)
        return True

    def _close_pipe(self) -> None:
        if self._writer and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._fd)
        self._writer = False
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self._fd = -1

    def start(self) -> None:
        """Start the sidecar now (else it starts with the first span)."""
        self._spawn()

    # -------------------------------------------------------------- serving side
    def emit(self, rec: SpanRecord) -> None:
        """Take one finished span; written at the end of this event-loop pass."""
        if self._closed:
            self.on_drop(1)
            return
        self._batch.append(rec)
        if self._scheduled:
            return
        loop = flush_at_end_of_pass(self.flush)
        if loop is not None:
            self._loop, self._scheduled = loop, True

    def flush(self) -> None:
        """Write the batch (or drop it, counted, when the sidecar cannot take it)."""
        self._scheduled = False
        batch, self._batch = self._batch, []
        if not batch:
            return
        if not self._spawn():
            self.on_drop(len(batch))
            return
        payload = marshal.dumps(batch)
        if len(self._pending) + len(payload) > MAX_PENDING_BYTES:
            self.on_drop(len(batch))
            return
        self._pending += _HEADER.pack(len(payload))
        self._pending += payload
        self._frames.append([_HEADER.size + len(payload), len(batch)])
        self._write()

    def _written(self, size: int) -> None:
        del self._pending[:size]
        while size and self._frames:
            frame = self._frames[0]
            taken = min(size, frame[0])
            frame[0] -= taken
            size -= taken
            if frame[0] == 0:
                self._frames.popleft()

    def _lost(self) -> None:
        self.on_drop(sum(spans for _, spans in self._frames))
        self._frames.clear()
        self._pending.clear()

    def _write(self) -> None:
        try:
            while self._pending:
                self._written(os.write(self._fd, self._pending))
        except BlockingIOError:
            if not self._writer and self._loop is not None and self._loop.is_running():
                self._loop.add_writer(self._fd, self._write)
                self._writer = True
            return
        except (BrokenPipeError, OSError):
            # The sidecar is gone: what it did not take is lost (counted); the next batch
            # starts a new one.
            self._lost()
            self._close_pipe()
            return
        if self._writer and self._loop is not None:
            self._loop.remove_writer(self._fd)
            self._writer = False

    def shutdown(self, timeout: float = 10.0) -> None:
        """Write everything taken (blocking now), close the pipe and wait for the sidecar to
        export it and exit."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._writer and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._fd)
            self._writer = False
        if self.proc is None:
            return
        if self._pending and self._fd >= 0:
            os.set_blocking(self._fd, True)
            try:
                while self._pending:
                    self._written(os.write(self._fd, self._pending))
            except OSError:
                self._lost()
        self._close_pipe()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def split_frames(data: bytes | bytearray) -> tuple[list[list[SpanRecord]], int]:
    """The whole frames at the start of ``data`` (batches of records written by
    :class:`SidecarSink`) and how many bytes they take."""
    batches: list[list[SpanRecord]] = []
    at = 0
    view = memoryview(data)
    try:
        while at + _HEADER.size <= len(data):
            (size,) = _HEADER.unpack_from(view, at)
            start = at + _HEADER.size
            if start + size > len(data):
                break
            batches.append(marshal.loads(view[start:start + size]))
            at = start + size
    finally:
        view.release()
    return batches, at


class RecordProcessor(SpanProcessor):
    """Spans made through the OpenTelemetry API, handed to the sink as records when they end."""

    def __init__(self, sink: SpanSink) -> None:
        self.sink = sink

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Hand the finished span to the sink."""
        if span.context is not None and span.context.trace_flags.sampled:
            self.sink.emit(record_of(span))

    def shutdown(self) -> None:
        """The sink is shut down by its owner."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Records are written once per event-loop pass."""
        return True
