"""One trace per conversation across requests and app instances: the exact span tree."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections import Counter
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from telemetry import names as n
from tests.telemetry.conftest import BOOK, PHONE, Captured, book


def of(spans: list[ReadableSpan], conv_id: str) -> list[ReadableSpan]:
    """The spans of one conversation, in start order."""
    mine = [s for s in spans if (s.attributes or {}).get(n.A_CONVERSATION_ID) == conv_id]
    return sorted(mine, key=lambda s: (s.start_time or 0, s.name))


def check_tree(spans: list[ReadableSpan], secret: bytes, conv_id: str, epoch: int = 0) -> ReadableSpan:
    """One trace with the derived id, the root exactly once, every parent present; returns the root."""
    digest = hmac.new(secret, f"{conv_id}:{epoch}".encode(), hashlib.sha256).digest()
    trace_id = int.from_bytes(digest[:16], "big")
    root_id = int.from_bytes(digest[16:24], "big")
    assert {s.context.trace_id for s in spans} == {trace_id}
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1 and roots[0].name == n.SPAN_CONVERSATION
    root = roots[0]
    assert root.context.span_id == root_id
    ids = {s.context.span_id for s in spans}
    assert len(ids) == len(spans), "span ids are unique"
    orphans = [s.name for s in spans if s.parent is not None and s.parent.span_id not in ids]
    assert orphans == [], f"parents never emitted: {orphans}"
    return root


def states(spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    """State spans under the root, in time order."""
    found = [s for s in spans if s.name.startswith(n.SPAN_STATE_PREFIX)]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in found)
    return sorted(found, key=lambda s: (s.start_time or 0, s.end_time or 0))


async def test_happy_path_tree(make_live: Any, captured: Any, clock: Any) -> None:
    """conversation → state START…CONFIRMED → turns and one book_slot under WAIT_CONFIRM."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        answer = await book(live, "conv_tree", clock=clock)
        assert answer["state"] == "CONFIRMED"
        assert answer["trace_id"] == cap.telemetry.trace_id_hex("conv_tree")
    spans = of(list(cap.exporter.get_finished_spans()), "conv_tree")
    root = check_tree(spans, b"test-secret", "conv_tree")
    attrs = root.attributes or {}
    assert attrs[n.A_OUTCOME] == "confirmed" and attrs[n.A_TURNS] == 4
    assert attrs[n.A_CHANNEL] == "text"
    assert attrs[n.A_CALLER_PHONE_HASH] != PHONE and PHONE not in str(attrs)
    seen = states(spans, root)
    assert [s.name for s in seen] == [
        "state START", "state QUALIF_NAME", "state QUALIF_PREF", "state WAIT_CONFIRM", "state CONFIRMED",
    ]
    for before, after in itertools.pairwise(seen):
        assert (before.end_time or 0) <= (after.start_time or 0) + 1
        assert (before.start_time or 0) <= (before.end_time or 0)
    assert (root.start_time or 0) <= (seen[0].start_time or 0) and (seen[-1].end_time or 0) <= (root.end_time or 0)
    by_id = {s.context.span_id: s for s in spans}
    turns = [s for s in spans if s.name == n.SPAN_TURN]
    assert len(turns) == 4 and all(t.kind is SpanKind.SERVER for t in turns)
    assert [by_id[t.parent.span_id].name for t in turns] == [  # type: ignore[union-attr]
        "state START", "state QUALIF_NAME", "state QUALIF_PREF", "state WAIT_CONFIRM",
    ]
    assert all((t.attributes or {})["http.response.status_code"] == 200 for t in turns)
    booked = [s for s in spans if s.name == n.SPAN_BOOK_SLOT]
    assert len(booked) == 1
    assert by_id[booked[0].parent.span_id].name == "state WAIT_CONFIRM"  # type: ignore[union-attr]
    assert (booked[0].attributes or {})[n.A_BOOKING_RESULT] == "success"
    assert (booked[0].attributes or {})[n.A_BOOKING_RETRY] == 0


async def test_lost_race_marks_slot_taken(make_live: Any, captured: Any) -> None:
    """The losing caller's book_slot span has error.type=slot_taken, then a retry succeeds."""
    cap: Captured = captured()
    async with make_live({"RDV_SLOT_HOLD_SECONDS": "0"}, telemetry=cap.telemetry) as live:
        for conv in ("conv_win", "conv_lose"):
            for text in (BOOK, "Jean Dupont", "pas de préférence"):
                await live.say(conv, text, caller_phone=PHONE)
        await live.say("conv_win", "le premier", caller_phone=PHONE)
        assert (await live.say("conv_lose", "le premier", caller_phone=PHONE))["state"] == "WAIT_CONFIRM"
        assert (await live.say("conv_lose", "le premier", caller_phone=PHONE))["state"] == "CONFIRMED"
    spans = of(list(cap.exporter.get_finished_spans()), "conv_lose")
    check_tree(spans, b"test-secret", "conv_lose")
    attempts = [s for s in spans if s.name == n.SPAN_BOOK_SLOT]
    assert [(s.attributes or {})[n.A_BOOKING_RESULT] for s in attempts] == ["slot_taken", "success"]
    assert (attempts[0].attributes or {})[n.A_ERROR_TYPE] == "slot_taken"
    assert (attempts[1].attributes or {}).get(n.A_ERROR_TYPE) is None
    assert (attempts[1].attributes or {})[n.A_BOOKING_RETRY] == 1
    by_id = {s.context.span_id: s for s in spans}
    # The retry proposal stays in WAIT_CONFIRM: one state span covers both attempts.
    assert {by_id[s.parent.span_id].name for s in attempts} == {"state WAIT_CONFIRM"}  # type: ignore[union-attr]
    assert cap.sample("rdv_booking_attempts_total", channel="text", result="slot_taken") == 1
    assert cap.sample("rdv_booking_retries_total", channel="text") == 1


async def test_abandoned_call_ends_the_trace_once(make_live: Any, captured: Any, clock: Any) -> None:
    """A call that ends without outcome (hang-up) emits the root once, outcome abandoned."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        await live.say("conv_gone", BOOK, caller_phone=PHONE)
        clock.advance(seconds=4)
        await live.say("conv_gone", "Jean Dupont", caller_phone=PHONE)
        clock.advance(seconds=4)
        assert not cap.exporter.get_finished_spans() or all(
            s.name != n.SPAN_CONVERSATION for s in cap.exporter.get_finished_spans()
        )
        await live.services.turns.end_call("conv_gone", "customer-ended-call")
        await live.services.turns.end_call("conv_gone", "customer-ended-call")
    spans = of(list(cap.exporter.get_finished_spans()), "conv_gone")
    root = check_tree(spans, b"test-secret", "conv_gone")
    assert (root.attributes or {})[n.A_OUTCOME] == "abandoned"
    assert (root.attributes or {})[n.A_ENDED_REASON] == "customer-ended-call"
    assert [s.name for s in states(spans, root)] == ["state START", "state QUALIF_NAME", "state QUALIF_PREF"]
    assert cap.sample("rdv_conversations_ended_total", channel="text", outcome="abandoned") == 1


async def test_two_instances_share_one_trace(make_live: Any, captured: Any, clock: Any) -> None:
    """Turns alternating between two app instances on one store still make one tree."""
    exporter = InMemorySpanExporter()
    first: Captured = captured(exporter=exporter)
    second: Captured = captured(exporter=exporter)
    async with make_live(telemetry=first.telemetry) as a, make_live(telemetry=second.telemetry) as b:
        texts = (BOOK, "Jean Dupont", "pas de préférence", "le deuxième")
        for i, text in enumerate(texts):
            clock.advance(seconds=3)
            answer = await (a if i % 2 == 0 else b).say("conv_two", text, caller_phone=PHONE)
        assert answer["state"] == "CONFIRMED"
    spans = of(list(exporter.get_finished_spans()), "conv_two")
    root = check_tree(spans, b"test-secret", "conv_two")
    assert [s.name for s in states(spans, root)][-1] == "state CONFIRMED"
    assert Counter(s.name for s in spans)[n.SPAN_TURN] == 4
    assert first.sample("rdv_conversations_started_total", channel="text") == 1
    assert second.sample("rdv_conversations_ended_total", channel="text", outcome="confirmed") == 1


async def test_expired_conversation_root_on_reap(make_live: Any, captured: Any, clock: Any) -> None:
    """The reaper closes an idle conversation: its root span ends then, outcome expired."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        await live.say("conv_exp", BOOK, caller_phone=PHONE)
        clock.advance(minutes=20)
        assert await live.services.turns.reap("test") == 1
    spans = of(list(cap.exporter.get_finished_spans()), "conv_exp")
    root = check_tree(spans, b"test-secret", "conv_exp")
    assert (root.attributes or {})[n.A_OUTCOME] == "expired"


def test_trace_id_is_documented_hmac() -> None:
    """The operator's recipe: first 16 bytes of HMAC-SHA256(secret, "conv_id:epoch"), hex."""
    cap = Captured()
    expected = hmac.new(b"test-secret", b"conv_doc:0", hashlib.sha256).hexdigest()[:32]
    assert cap.telemetry.trace_id_hex("conv_doc") == expected
    assert cap.telemetry.trace_id_hex("conv_doc", 1) != expected


def test_readme_shell_recipe_gives_the_trace_id() -> None:
    """The README's openssl recipe computes the same trace id as the service."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    out = subprocess.run(
        ["bash", "-c",
         "printf '%s' \"conv_x:0\" | openssl dgst -sha256 -hmac \"test-secret\" | awk '{print substr($NF,1,32)}'"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout.strip()
    assert out == Captured().telemetry.trace_id_hex("conv_x")


async def test_ratio_sampling_keeps_or_drops_whole_conversations(
    make_live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OTEL_TRACES_SAMPLER=traceidratio`` (the lever against export cost) decides on the
    derived trace id: every span of a conversation is kept, or none of them."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    cap = Captured()
    async with make_live(telemetry=cap.telemetry) as live:
        ids = [f"conv_sampled_{i}" for i in range(24)]
        for i, conv_id in enumerate(ids):
            await live.say(conv_id, BOOK, caller_phone=f"+336123456{i:02d}")
            await live.say(conv_id, "je voudrais parler à quelqu'un")
    by_conv: dict[str, set[str]] = {}
    for span in cap.exporter.get_finished_spans():
        conv_id = str((span.attributes or {}).get(n.A_CONVERSATION_ID, ""))
        by_conv.setdefault(conv_id, set()).add(span.name)
    kept = [c for c in ids if c in by_conv]
    assert 0 < len(kept) < len(ids)
    for conv_id in kept:
        assert {n.SPAN_CONVERSATION, n.SPAN_TURN} <= by_conv[conv_id], by_conv[conv_id]


async def test_turn_routes_skip_the_asgi_middleware_other_routes_keep_it(make_live: Any) -> None:
    """A caller turn makes rdv's own ``turn`` span only (OpenTelemetry's ASGI middleware is not
    on its path); the timeline route gets the middleware's server span."""
    cap = Captured()
    async with make_live(telemetry=cap.telemetry) as live:
        await live.say("conv_routes", BOOK, caller_phone=PHONE)
        turn_spans = list(cap.exporter.get_finished_spans())
        answer = await live.client.get("/api/conversations/conv_routes")
        assert answer.status_code == 200
    assert sorted(s.name for s in turn_spans) == ["state START", n.SPAN_TURN]
    assert all(s.instrumentation_scope is not None and s.instrumentation_scope.name == "rdv" for s in turn_spans)
    later = [s for s in cap.exporter.get_finished_spans() if s not in turn_spans]
    assert len(later) == 1 and later[0].kind is SpanKind.SERVER
    assert later[0].instrumentation_scope is not None
    assert later[0].instrumentation_scope.name == "opentelemetry.instrumentation.asgi"
    assert (later[0].attributes or {}).get("http.target") == "/api/conversations/conv_routes"
