"""Vapi server messages join their call's trace: a status update and the end-of-call report of
call X are spans of X's trace (children of its conversation span), not traces of their own."""

from __future__ import annotations

from collections import Counter
from typing import Any

from opentelemetry.trace import SpanKind

from telemetry import names as n
from tests.telemetry.conftest import Captured
from tests.telemetry.test_traces import check_tree, of
from tests.vapi.conftest import EVENTS, VapiCall, event
from tests.vapi.test_events import BOOK, report


async def test_server_messages_land_in_the_calls_trace(make_live: Any, captured: Any, clock: Any) -> None:
    """Two turns of call X, then Vapi's in-progress and ended status updates and its report:
    every span of X (turns, states, root, the three messages) is in X's derived trace, the
    messages' spans are server spans under X's root; call Y's message stays in Y's trace."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        x = VapiCall(live.client, "call-x")
        y = VapiCall(live.client, "call-y")
        await x.say(BOOK)
        await y.say(BOOK)
        clock.advance(seconds=4)
        await x.say("Jean Dupont")
        messages = [
            event("status-update", "call-x", status="in-progress"),
            event("status-update", "call-x", status="ended", endedReason="customer-ended-call"),
            report("call-x"),
            event("speech-update", "call-y", status="started", role="user"),
        ]
        for body in messages:
            response = await live.client.post(EVENTS, json=body)
            assert response.status_code == 200, response.text
    spans = list(cap.exporter.get_finished_spans())
    mine = of(spans, "call-x")
    root = check_tree(mine, b"test-secret", "call-x")
    received = [s for s in mine if s.name == n.SPAN_VAPI_EVENT]
    assert [(s.attributes or {})[n.A_VAPI_EVENT_TYPE] for s in received] == [
        "status-update", "status-update", "end-of-call-report"]
    for span in received:
        assert span.kind == SpanKind.SERVER
        assert span.parent is not None and span.parent.span_id == root.context.span_id
        assert (span.attributes or {})[n.A_HTTP_STATUS] == 200
    assert Counter(s.name for s in mine)[n.SPAN_TURN] == 2
    theirs = [s for s in of(spans, "call-y") if s.name == n.SPAN_VAPI_EVENT]
    assert len(theirs) == 1
    assert theirs[0].context.trace_id == next(s for s in of(spans, "call-y") if s.name == n.SPAN_TURN).context.trace_id
    assert theirs[0].context.trace_id != root.context.trace_id
    # No request of these calls started a trace of its own (what the generic middleware did).
    assert {s.context.trace_id for s in spans} == {root.context.trace_id, theirs[0].context.trace_id}


async def test_a_refused_server_message_records_no_span(make_live: Any, captured: Any) -> None:
    """A message refused before it is read (bad body) adds nothing to any trace."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        response = await live.client.post(EVENTS, content=b'{"message": {"type": 3}}',
                                          headers={"content-type": "application/json"})
        assert response.status_code == 422
    assert [s.name for s in cap.exporter.get_finished_spans()] == []
