"""The one observer: engine events in, the seed's log lines, spans and metrics out.

The HTTP shell hands every engine step's events to :meth:`Telemetry.observe` (or to the
turn scope it opened with :meth:`Telemetry.begin_turn`). Nothing here can change a
conversation; the only state it keeps between turns is ``meta``, a small dict saved with
the conversation: the id and start of the current state's span.

On the turn path an enum's value is read as ``member._value_``: what ``member.value``
returns, without the call of that property (written in Python, it costs more than the rest
of a span attribute).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from service.engine import events as ev
from service.engine.model import Conversation
from service.engine.states import Channel, TransferReason
from telemetry import names as n
from telemetry.events import EVENTS, EventSpec, VapiCallEnded
from telemetry.logs import make_logger
from telemetry.metrics import Metrics
from telemetry.spans import DEFAULT_BATCH, SpanSink, record
from telemetry.tracing import (
    derive_ids,
    make_provider,
    make_sink,
    new_span_id,
    remote_parent,
    sampler_decides,
)

# Keys of the per-conversation telemetry metadata saved by the store.
META_STATE_SPAN = "state_span"
META_STATE = "state"
META_STATE_SINCE = "state_since"


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


def ended_reason_category(reason: str | None) -> str:
    """Vapi's ``endedReason`` grouped by meaning (vapi-protocol.md §3); unknown → ``other``."""
    r = (reason or "").strip().lower()
    if not r:
        return "other"
    if r.startswith("customer-ended-call") or r.endswith("caller-hungup-before-call-connect"):
        return "caller_hung_up"
    if r.startswith("assistant-ended-call") or r == "assistant-said-end-call-phrase":
        return "assistant_ended"
    if r in {"silence-timed-out", "exceeded-max-duration", "assistant-join-timed-out"} or r.endswith(
        "error-assistant-did-not-receive-customer-audio"
    ):
        return "timeout"
    if (
        r == "assistant-forwarded-call"
        or r.startswith((
            "call.forwarding.", "call.in-progress.error-transfer-failed", "call.in-progress.error-warm-transfer",
        ))
        or r.endswith("hook-executed-transfer")
    ):
        return "transfer"
    if r == "voicemail":
        return "voicemail"
    if r in {"customer-busy", "customer-did-not-answer"} or r.startswith(("sip-outbound-", "twilio-", "vonage-")):
        return "not_reached"
    if r.startswith((
        "pipeline-error-custom-llm", "call.in-progress.error-vapifault-custom-llm",
        "call.in-progress.error-providerfault-custom-llm",
    )):
        return "custom_llm_error"
    if r.startswith(("pipeline-error-", "call.in-progress.error-providerfault",
                     "call.in-progress.error-vapifault")) or r in {
        "worker-shutdown",
        "phone-call-provider-closed-websocket",
    }:
        return "provider_error"
    if r.startswith(("call.start.error", "assistant-request-", "call-start-error")) or r in {
        "assistant-not-found",
        "assistant-not-valid",
    }:
        return "setup_error"
    if r in {"manually-canceled", "call-deleted", "scheduled-call-deleted"}:
        return "admin"
    return "other"


def status_class(status: int) -> str:
    """``2xx``, ``4xx`` or ``5xx`` (the ``code`` label): anything under 400 counts as answered."""
    return "5xx" if status >= 500 else "4xx" if status >= 400 else "2xx"


@dataclass(slots=True)
class _Step:
    """One engine step recorded by a turn: what it said and the meta around it (never changed
    once recorded; not frozen, which would make each of the turn's steps slower to build)."""

    conv: Conversation
    events: tuple[ev.Event, ...]
    start: dict[str, Any]
    planned: list[dict[str, Any]]
    end: dict[str, Any]
    at_ns: int


class _Noop:
    """A counter child that counts nothing."""

    def inc(self, amount: float = 1) -> None:
        """Count nothing."""


class SyntheticMetrics:
    """What a test conversation (``rdv probe``, ``rdv simulate``) moves: its own ended counter
    only, never a business series (conversion, funnel, where calls stop, the alerts' ratios)."""

    def __init__(self, real: Metrics) -> None:
        self.real = real
        self.started: dict[str, _Noop] = {c: _Noop() for c in n.CHANNELS}

    def inc(self, metric: n.Metric, *labels: str) -> None:
        """Count an ended test conversation by channel and outcome; ignore the rest."""
        if metric is n.CONVERSATIONS_ENDED:
            self.real.inc(n.SYNTHETIC_CONVERSATIONS, labels[0], labels[1])

    def observe(self, metric: n.Metric, value: float, trace_id: str | None, *labels: str) -> None:
        """Record nothing."""


class TurnScope:
    """Telemetry of one caller turn: its server span, its booking spans, its latency.

    Engine steps are recorded as they happen (the state-span ids they allocate go into the
    stored meta) and emitted — log lines, metrics, spans — only by :meth:`commit`, once the
    turn is saved: a turn that is not stored leaves no trace in the numbers.
    """

    __slots__ = ("_steps", "channel", "conv", "meta", "span", "span_parent", "span_start", "started", "tel",
                 "tid", "trace_id")

    def __init__(self, tel: Telemetry, conv: Conversation, meta: dict[str, Any], channel: str, route: str,
                 method: str) -> None:
        self.tel = tel
        self.conv = conv
        self.channel = channel
        self.meta = tel.ensure_meta(conv, meta)
        tid, _ = tel.ids(conv)
        self.tid = tid
        self.trace_id = tel.trace_id_hex(conv.conv_id, conv.epoch)
        self.started = time.perf_counter()
        self._steps: list[_Step] = []
        # The turn's server span, a record's attributes until it ends (None: not traced).
        self.span: dict[str, Any] | None = None
        self.span_start = 0
        self.span_parent = 0
        if tel.tracing and tel.sampled(tid):
            self.span_start = time.time_ns()
            self.span_parent = int(self.meta[META_STATE_SPAN], 16)
            self.span = {
                n.A_CONVERSATION_ID: conv.conv_id,
                n.A_CHANNEL: channel,
                n.A_STATE: conv.state._value_,
                n.A_TURN_NUMBER: conv.turn_count + 1,
                "http.request.method": method,
                "http.route": route,
            }

    def observe(self, conv: Conversation, events: Iterable[ev.Event]) -> None:
        """Record one engine step of this turn (emitted by :meth:`commit`)."""
        events = tuple(events)
        if self.tel.enabled:
            start = self.meta if META_STATE_SPAN in self.meta else self.tel.ensure_meta(conv, self.meta)
            end, planned = self.tel.plan_from(start, events)
        else:
            start = end = self.meta
            planned = [start] * len(events)
        self._steps.append(_Step(conv, events, start, planned, end, time.time_ns()))
        self.meta = end
        self.conv = conv

    @property
    def recorded(self) -> int:
        """How many engine steps are recorded so far."""
        return len(self._steps)

    @contextlib.contextmanager
    def under_state(self, steps: int | None = None) -> Iterator[None]:
        """Within the block, new spans (the calendar's requests) are children of the span of
        the current state, or of the state after the first ``steps`` recorded steps (the one
        that asked to book)."""
        if not self.tel.tracing:
            yield
            return
        meta = self._steps[steps - 1].end if steps else self.meta
        conv = self._steps[steps - 1].conv if steps else self.conv
        tid, _ = self.tel.ids(conv)
        token = otel_context.attach(remote_parent(tid, int(meta[META_STATE_SPAN], 16)))
        try:
            yield
        finally:
            otel_context.detach(token)

    def keep(self, count: int) -> None:
        """Forget the steps after the first ``count`` (the turn is decided again from there)."""
        del self._steps[count:]
        if self._steps:
            self.meta, self.conv = self._steps[-1].end, self._steps[-1].conv

    def commit(self) -> None:
        """The turn is saved: emit its steps' log lines, metrics and spans."""
        tel = self.tel
        attempt_ns: int | None = None
        for step in self._steps:
            if tel.tracing:
                attempt_ns = self._step_spans(step, attempt_ns)
            tel.observe(step.conv, step.events, step.start, planned=step.planned)
        self._steps.clear()

    def _step_spans(self, step: _Step, attempt_ns: int | None) -> int | None:
        """What a step tells the turn's spans: its booking spans, whether the caller cut in;
        returns when the last booking attempt so far was made."""
        for event in step.events:
            if isinstance(event, ev.BookingAttempted):
                attempt_ns = step.at_ns
            elif isinstance(event, ev.BookingResulted):
                self.tel.booking_span(step.conv, step.start, event, attempt_ns or step.at_ns)
            elif isinstance(event, ev.Interrupted) and self.span is not None:
                self.span[n.A_INTERRUPTED] = True
        return attempt_ns

    def close(self, status: int) -> None:
        """End the turn: latency histogram (with the trace id as exemplar) and the server span."""
        if not self.tel.enabled:
            return
        elapsed = time.perf_counter() - self.started
        self.tel.metrics.observe(n.TURN_DURATION, elapsed, self.trace_id, self.channel)
        self.tel.metrics.inc(n.TURN_RESPONSES, self.channel, status_class(status))
        attrs = self.span
        if attrs is not None and self.tel.sink is not None:
            attrs["http.response.status_code"] = status
            attrs[n.A_STATE_NEXT] = self.conv.state._value_
            code = StatusCode.UNSET
            if status >= 500:
                code = StatusCode.ERROR
                attrs[n.A_ERROR_TYPE] = str(status)
            self.tel.sink.emit(record(
                n.SPAN_TURN, self.tid, new_span_id(), self.span_parent, self.span_start, time.time_ns(), attrs,
                kind=SpanKind.SERVER, status=code,
            ))


class Telemetry:
    """Logs, spans and metrics of the service, built once at start-up."""

    def __init__(
        self,
        *,
        logger: Any,
        metrics: Metrics,
        provider: Any,
        sink: SpanSink | None,
        trace_secret: bytes,
        log_format: str,
        enabled: bool = True,
    ) -> None:
        self.log = logger
        self.metrics = metrics
        self.provider = provider
        self.tracer = provider.get_tracer("rdv")
        self.sink = sink
        self.tracing = sink is not None
        self._keep = sampler_decides(provider)
        self.secret = trace_secret
        self.json_logs = log_format == "json"
        self.enabled = enabled
        self.synthetic_metrics = SyntheticMetrics(metrics)
        # (conversation id, epoch) → its derived ids, and its trace id in hex: filled together.
        self._ids: dict[tuple[str, int], tuple[int, int]] = {}
        self._hex: dict[tuple[str, int], str] = {}

    @classmethod
    def create(
        cls,
        *,
        log_format: str = "text",
        log_pii: bool = False,
        trace_secret: bytes,
        version: str = "dev",
        engine_revision: str | None = None,
        registry: CollectorRegistry | None = None,
        span_exporter: SpanExporter | None = None,
        log_stream: TextIO | None = None,
        enabled: bool = True,
        traces_exporter: str = "none",
        span_batch: tuple[int, int] = DEFAULT_BATCH,
        multiprocess: bool = False,
    ) -> Telemetry:
        """Build the telemetry; spans go to ``span_exporter`` (in process) or to the exporter
        ``traces_exporter`` names (``otlp``, ``console``: settings' ``OTEL_TRACES_EXPORTER``),
        run by a sidecar process, or nowhere (``none``); the sidecar exports batches of at
        most ``span_batch[0]`` spans, none waiting longer than ``span_batch[1]`` ms.

        ``enabled=False`` (``RDV_TELEMETRY=false``) keeps ``/metrics`` serving but records no
        event, span or log line of conversations: the baseline that ``make bench`` compares to.
        """
        metrics = Metrics(registry, version, engine_revision, multiprocess=multiprocess)
        sink = (make_sink(version, span_exporter, traces_exporter, metrics.spans_dropped, span_batch)
                if enabled else None)
        return cls(
            logger=make_logger(log_format, log_pii, log_stream),
            metrics=metrics,
            provider=make_provider(version, sink),
            sink=sink,
            trace_secret=trace_secret,
            log_format=log_format,
            enabled=enabled,
        )

    # ------------------------------------------------------------------ ids
    def sampled(self, trace_id: int) -> bool:
        """Whether the conversation of ``trace_id`` is traced (the sampler's one decision)."""
        return self._keep is None or self._keep(trace_id)

    def _derive(self, key: tuple[str, int]) -> tuple[int, int]:
        """Derive and keep the ids of the conversation ``key`` (its id and epoch), and its
        trace id in hex: one keyed hash per conversation while it is among the last few
        thousand seen."""
        if len(self._ids) > 4096:
            self._ids.clear()
            self._hex.clear()
        found = self._ids[key] = derive_ids(self.secret, *key)
        self._hex[key] = f"{found[0]:032x}"
        return found

    def ids(self, conv: Conversation) -> tuple[int, int]:
        """(trace id, root span id) of ``conv`` (a keyed hash, cached)."""
        key = (conv.conv_id, conv.epoch)
        found = self._ids.get(key)
        return found if found is not None else self._derive(key)

    def trace_id_hex(self, conv_id: str, epoch: int = 0) -> str:
        """The 32-hex-digit trace id of a conversation, as trace UIs show it (cached)."""
        key = (conv_id, epoch)
        found = self._hex.get(key)
        if found is None:
            self._derive(key)
            found = self._hex[key]
        return found

    def phone_hash(self, phone: str) -> str:
        """A keyed hash of a phone number: lets traces be grouped by caller, never read back."""
        return hmac.new(self.secret, phone.encode(), hashlib.sha256).hexdigest()[:16]

    @staticmethod
    def ensure_meta(conv: Conversation, meta: dict[str, Any]) -> dict[str, Any]:
        """Meta with a span id allocated for the current state (a new conversation has none)."""
        if meta.get(META_STATE) != conv.state or META_STATE_SPAN not in meta:
            meta = dict(meta)
            meta[META_STATE_SPAN] = f"{new_span_id():016x}"
            meta[META_STATE] = conv.state._value_
            meta[META_STATE_SINCE] = conv.state_entered_at.isoformat()
        return meta

    # ------------------------------------------------------------------ entry points
    def begin_turn(
        self, conv: Conversation, meta: dict[str, Any], *, channel: str, route: str, method: str = "POST"
    ) -> TurnScope:
        """Open the telemetry of one caller turn."""
        return TurnScope(self, conv, meta, channel, route, method)

    def _json_ids(self, fields: dict[str, Any], conv: Conversation, meta: dict[str, Any] | None) -> None:
        """Add the ids a JSON line carries: the trace's, and the span's of the current state."""
        fields["trace_id"] = self.trace_id_hex(conv.conv_id, conv.epoch)
        fields["span_id"] = (meta or {}).get(META_STATE_SPAN) or f"{self.ids(conv)[1]:016x}"

    def _lines(self, spec: EventSpec[Any], event: Any, conv: Conversation, meta: dict[str, Any] | None) -> None:
        """Write the log lines ``event`` writes (its registry entry says which)."""
        for line in spec.lines:
            fields = line.fields(event)
            if fields is not None:
                if self.json_logs:
                    self._json_ids(fields, conv, meta)
                self.log.conv_line(line.tag, conv.conv_id, fields)

    @staticmethod
    def _advance(meta: dict[str, Any], event: ev.StateChanged) -> dict[str, Any]:
        """The meta once ``event`` entered a new state: a new state span id, the entry time."""
        meta = dict(meta)
        meta[META_STATE_SPAN] = f"{new_span_id():016x}"
        meta[META_STATE] = event.to_state._value_
        meta[META_STATE_SINCE] = event.at.isoformat()
        return meta

    def plan_meta(
        self, conv: Conversation, events: tuple[ev.Event, ...], meta: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The meta after each of ``events`` (state span ids allocated, nothing emitted) and
        the final one; :meth:`observe` given these emits with the same ids."""
        if not self.enabled:
            return meta, [meta] * len(events)
        return self.plan_from(self.ensure_meta_for(conv, meta), events)

    def plan_from(
        self, meta: dict[str, Any], events: tuple[ev.Event, ...]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """:meth:`plan_meta` from a meta that has its state span already."""
        planned = []
        for event in events:
            if isinstance(event, ev.StateChanged):
                meta = self._advance(meta, event)
            planned.append(meta)
        return meta, planned

    def observe(
        self,
        conv: Conversation,
        events: Iterable[ev.Event],
        meta: dict[str, Any],
        *,
        planned: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Turn one engine step's events into log lines, spans and metrics; returns the new
        meta (``planned``: the metas :meth:`plan_meta` allocated for these events)."""
        if not self.enabled:
            return meta
        if META_STATE_SPAN not in meta:
            meta = self.ensure_meta(conv, meta)
        channel = conv.channel
        m: Metrics | SyntheticMetrics = self.synthetic_metrics if conv.synthetic else self.metrics
        trace_id = self.trace_id_hex(conv.conv_id, conv.epoch)
        for i, event in enumerate(events):
            spec = EVENTS[type(event)]
            self._lines(spec, event, conv, meta)
            if spec.count is not None:
                spec.count(event, m, channel, trace_id)
            if isinstance(event, ev.StateChanged):
                if self.tracing:
                    self.state_span(conv, meta, event.from_state._value_, event.at, event.to_state._value_)
                meta = planned[i] if planned is not None else self._advance(meta, event)
            elif isinstance(event, ev.ConversationEnded) and self.tracing:
                self.end_spans(conv, meta, event)
        return meta

    def ensure_meta_for(self, conv: Conversation, meta: dict[str, Any]) -> dict[str, Any]:
        """Like :meth:`ensure_meta`, but keeps the stored state span when the state is known."""
        if META_STATE_SPAN in meta:
            return meta
        return self.ensure_meta(conv, meta)

    # ------------------------------------------------------------------ spans
    def _base(self, conv: Conversation) -> dict[str, Any]:
        attrs: dict[str, Any] = {n.A_CONVERSATION_ID: conv.conv_id, n.A_CHANNEL: conv.channel._value_}
        if conv.vapi_call_id:
            attrs[n.A_VAPI_CALL_ID] = conv.vapi_call_id
        return attrs

    def state_span(self, conv: Conversation, meta: dict[str, Any], state: str, end: datetime,
                   next_state: str | None) -> None:
        """Emit the span of ``state`` (allocated when it was entered) now that it is left."""
        if self.sink is None:
            return
        tid, root = self.ids(conv)
        if not self.sampled(tid):
            return
        since = meta.get(META_STATE_SINCE)
        start = _ns(datetime.fromisoformat(since) if since else conv.state_entered_at)
        attrs = self._base(conv)
        attrs[n.A_STATE] = state
        if next_state:
            attrs[n.A_STATE_NEXT] = next_state
        self.sink.emit(record(
            n.state_span_name(state), tid, int(meta[META_STATE_SPAN], 16), root, start, max(_ns(end), start), attrs,
        ))

    def booking_span(self, conv: Conversation, meta: dict[str, Any], event: ev.BookingResulted, start_ns: int) -> None:
        """One ``book_slot`` span under the state that made the attempt."""
        if self.sink is None:
            return
        tid, _ = self.ids(conv)
        if not self.sampled(tid):
            return
        attrs = self._base(conv)
        attrs[n.A_SLOT_START] = event.slot_start.isoformat()
        attrs[n.A_BOOKING_RESULT] = event.result._value_
        attrs[n.A_BOOKING_RETRY] = event.retry
        code, description = StatusCode.UNSET, None
        if not event.success:
            attrs[n.A_ERROR_TYPE] = event.result._value_
            code, description = StatusCode.ERROR, event.result._value_
        self.sink.emit(record(
            n.SPAN_BOOK_SLOT, tid, new_span_id(), int(self.ensure_meta_for(conv, meta)[META_STATE_SPAN], 16),
            start_ns, time.time_ns(), attrs, status=code, description=description,
        ))

    def end_spans(self, conv: Conversation, meta: dict[str, Any], event: ev.ConversationEnded) -> None:
        """The last state's span and the root ``conversation`` span, exactly once per conversation."""
        if self.sink is None:
            return
        end = max(conv.last_seen_at, conv.state_entered_at)
        self.state_span(conv, meta, meta.get(META_STATE, conv.state._value_), end, None)
        tid, root = self.ids(conv)
        if not self.sampled(tid):
            return
        attrs = self._base(conv)
        attrs[n.A_OUTCOME] = event.outcome._value_
        attrs[n.A_TURNS] = event.turns
        attrs[n.A_STATE] = event.state._value_
        if event.reason:
            attrs[n.A_ENDED_REASON] = event.reason
        if conv.caller_phone:
            attrs[n.A_CALLER_PHONE_HASH] = self.phone_hash(conv.caller_phone)
        start = _ns(conv.created_at)
        self.sink.emit(record(
            n.SPAN_CONVERSATION, tid, root, 0, start, max(_ns(end), start), attrs, kind=SpanKind.SERVER,
            remote_parent=False,
        ))

    # ------------------------------------------------------------------ others
    def vapi_ended_reason(self, conv: Conversation | None, reason: str | None) -> str:
        """Count a Vapi end-of-call reason by category and log it; returns the category."""
        category = ended_reason_category(reason)
        event = VapiCallEnded(reason, category)
        spec = EVENTS[VapiCallEnded]
        if spec.count is not None:
            m = self.synthetic_metrics if conv is not None and conv.synthetic else self.metrics
            spec.count(event, m, "", "")
        if conv is not None:
            self._lines(spec, event, conv, None)
        return category

    def store_unavailable(self) -> None:
        """A store call failed or timed out (what RdvStoreUnavailable watches)."""
        self.metrics.inc(n.STORE_UNAVAILABLE)

    def store_unavailable_transfer(self, conv_id: str) -> None:
        """A voice call handed over because the store did not answer (no engine step ran)."""
        if not n.is_synthetic(conv_id):
            self.metrics.inc(n.TRANSFERS, Channel.VOICE.value, TransferReason.STORE_UNAVAILABLE.value)
        self.log.info(n.LOG_VAPI_STORE_UNAVAILABLE, conv_id=conv_id)

    @contextlib.contextmanager
    def server_message_span(self, conv_id: str | None, epoch: int, kind: str) -> Iterator[Any]:
        """The server span of one Vapi server message, in its call's trace: a child of the
        conversation's root span (ids derived from the call id, which is the conversation id,
        and its epoch), so status updates and the end-of-call report sit beside the turns.
        A message that names no call gets a trace of its own. Yields None when not tracing."""
        if not self.tracing:
            yield None
            return
        attributes: dict[str, Any] = {
            n.A_VAPI_EVENT_TYPE: kind[:100], n.A_HTTP_METHOD: "POST", "http.route": "/vapi/events",
        }
        parent = None
        if conv_id is not None:
            parent = remote_parent(*derive_ids(self.secret, conv_id, epoch))
            attributes[n.A_CONVERSATION_ID] = conv_id
        with self.tracer.start_as_current_span(
            n.SPAN_VAPI_EVENT, context=parent, kind=SpanKind.SERVER, attributes=attributes,
        ) as span:
            yield span

    def set_active(self, counts: dict[str, int]) -> None:
        """Set the active-conversations gauge from the store's counts per channel (0 for a
        channel not in ``counts``: a replica that does not hold the count's lease reports 0)."""
        for channel in n.CHANNELS:
            self.metrics.set(n.ACTIVE_CONVERSATIONS, counts.get(channel, 0), channel)

    def metrics_response(self, accept: str | None) -> tuple[bytes, str]:
        """The ``/metrics`` body and content type for the scraper's ``Accept`` header."""
        return self.metrics.exposition(accept)

    def log_event(self, event: str, **fields: Any) -> None:
        """A service-level log line (start-up warnings, draining…)."""
        self.log.info(event, **fields)

    def start(self) -> None:
        """Start the span exporter process, if spans go to one (else it starts with the first span)."""
        start = getattr(self.sink, "start", None)
        if start is not None:
            start()

    def shutdown(self) -> None:
        """Write the pending log lines; export every span recorded, then stop span export."""
        self.log.flush()
        self.provider.shutdown()
        if self.sink is not None:
            self.sink.shutdown()
