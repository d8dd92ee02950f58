"""The tools' pure parts on tables and real replies: reading the dialogue, the Vapi stream,
the caller mix, windows and log lines."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service import stats
from service.config import build_limits
from service.tools.callers import Behaviour, allocate, parse_mix, spoken_number
from service.tools.dialogue import Stage, booked_label, held_label, infer_stage, stage_of_state
from service.tools.transport import ToolError, read_sse, spoken_prefix
from tests.operator.conftest import PHONE, run_simulation, to_slots


async def _turns(live: Any) -> list[dict[str, Any]]:
    rows = await live.services.store.conversations_seen_since(datetime(2000, 1, 1, tzinfo=UTC))
    out: list[dict[str, Any]] = []
    for row in rows:
        out.extend((await live.services.store.timeline(row["conv_id"]))["turns"])
    return out


@pytest.mark.parametrize("channel", ["voice", "text"])
async def test_stage_read_from_the_reply_matches_the_engine_state(make_live: Any, channel: str) -> None:
    """Every reply of simulated calls of every kind, plus menu, cancel and modify flows, is
    read as the stage its engine state means: what a Vapi caller relies on."""
    async with make_live({"MAX_TURNS_ANTI_LOOP": "8"}) as live:
        mix = "cooperative=4,hesitant=3,rejects=3,bad_phone=2,faq=3,interrupts=1,hangs_up=2,racer=2"
        await run_simulation(live, mix, 20, channel=channel)
        extra = {"channel": channel, "caller_phone": PHONE}
        await to_slots(live, "conv_book", **extra)
        await live.say("conv_book", "le premier", **extra)
        await live.say("conv_book", "merci", **extra)
        for conv_id, ask in (("conv_cancel", "je voudrais annuler mon rendez-vous"),
                             ("conv_move", "je voudrais déplacer mon rendez-vous")):
            await live.say(conv_id, ask, **extra)
            await live.say(conv_id, "hein", **extra)
        await live.say("conv_cancel", "oui", **extra)
        for conv_id in ("conv_book2", "conv_book3"):  # two appointments: the assistant asks which
            await to_slots(live, conv_id, **extra)
            await live.say(conv_id, "le premier", **extra)
        await live.say("conv_which", "je voudrais annuler mon rendez-vous", **extra)
        await live.say("conv_which", "hein", **extra)
        await live.say("conv_which", "le premier", **extra)
        # A withheld number finds nothing: the practice takes over, nothing read out.
        await live.say("conv_who", "je voudrais annuler mon rendez-vous", channel=channel)
        for text in ("je sais pas", "je sais pas trop", "3", "euh"):
            await live.say("conv_menu", text, channel=channel)
        for _ in range(9):
            await live.say("conv_loop", "euh", channel=channel)
        turns = await _turns(live)
    seen = set()
    for turn in turns:
        expected = stage_of_state(turn["state_after"])
        assert infer_stage(turn["reply"]) is expected, (turn["text"], turn["state_after"], turn["reply"])
        seen.add(expected)
    assert seen >= {
        Stage.START, Stage.NAME, Stage.PREFERENCE, Stage.SLOTS, Stage.PHONE, Stage.MENU, Stage.IDENTIFY,
        Stage.CANCEL_CONFIRM, Stage.CONFIRMED, Stage.CANCELLED, Stage.TRANSFERRED,
    }


def test_read_back_labels() -> None:
    """The booked slot is read from the confirmation, the held one from the cancel question."""
    assert booked_label("C'est noté : mardi 3 mars à 11h, au nom de Jean Dupont. Au revoir !") == "mardi 3 mars à 11h"
    assert held_label("Vous avez rendez-vous mardi 3 mars à 11h. Je l'annule ?") == "mardi 3 mars à 11h"
    assert booked_label("Lequel vous convient ?") is None and held_label("Bonjour") is None
    assert infer_stage("mar 3, 14h, mer 4, 9h ou jeu 5, midi ?") is Stage.SLOTS  # tightest voice budget
    assert infer_stage("Je ne comprends rien.") is Stage.UNKNOWN


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    """One SSE line of an OpenAI chunk, as vapi-protocol.md shows it."""
    import json

    body = {"id": "chatcmpl-rdv-1", "object": "chat.completion.chunk", "created": 1767261600, "model": "rdv",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return "data: " + json.dumps(body, ensure_ascii=False)


TRANSFER_CALL = {"role": "assistant", "content": None, "tool_calls": [{
    "index": 0, "id": "call_tr_01", "type": "function",
    "function": {"name": "transferCall", "arguments": "{\"destination\":\"+33140000000\"}"},
}]}
END_CALL = {"tool_calls": [{"index": 0, "id": "call_end_01", "type": "function",
                            "function": {"name": "endCall", "arguments": "{}"}}]}
SSE_CASES = [
    ([chunk({"role": "assistant", "content": "Parfait, je note "}), "", chunk({"content": "votre nom."}),
      chunk({}, "stop"), "data: [DONE]"], ("Parfait, je note votre nom.", [])),
    ([chunk(TRANSFER_CALL), chunk({}, "tool_calls"), "data: [DONE]"], ("", ["transferCall"])),
    ([chunk({"content": "Au revoir et bonne journée !"}), chunk(END_CALL), chunk({}, "tool_calls"), "data: [DONE]"],
     ("Au revoir et bonne journée !", ["endCall"])),
]


@pytest.mark.parametrize(("lines", "expected"), SSE_CASES)
def test_stream_is_read_like_vapi(lines: list[str], expected: tuple[str, list[str]]) -> None:
    """Text pieces are joined and tool calls named, from the protocol's own examples."""
    assert read_sse(lines) == expected


@pytest.mark.parametrize("lines", [
    [chunk({"content": "coupé"})],  # no [DONE]
    ['data: {"id": "x", "function_call": {"name": "endCall"}}', "data: [DONE]"],  # no choices
    ["data: {not json", "data: [DONE]"],
])
def test_malformed_stream_is_an_error(lines: list[str]) -> None:
    """A stream Vapi would reject is reported, not half-read."""
    with pytest.raises(ToolError):
        read_sse(lines)


def test_barge_in_keeps_a_spoken_prefix() -> None:
    """The history after a barge-in holds a strict, word-aligned start of the reply."""
    reply = "Très bien. J'ai trois créneaux : mardi 3 à 14h, mercredi 4 à 9h ou jeudi 5 à 10h. Lequel vous convient ?"
    cut = spoken_prefix(reply)
    assert reply.startswith(cut) and 0 < len(cut) < len(reply) / 2 and reply[len(cut)] == " "


def test_mix_is_allocated_exactly_and_checked() -> None:
    """Weights become exact counts that sum to the calls; bad mixes are named errors."""
    mix = parse_mix("cooperative=50, hesitant=10,racer=40")
    kinds = allocate(mix, 7, random.Random(1))
    assert len(kinds) == 7 and kinds.count(Behaviour.RACER) == 3 and kinds.count(Behaviour.COOPERATIVE) == 3
    assert sorted(allocate(mix, 7, random.Random(1))) == sorted(kinds)
    for bad, word in (("shouty=3", "shouty"), ("cooperative", "kind=weight"), ("cooperative=0", "above 0")):
        with pytest.raises(ToolError, match=word):
            parse_mix(bad)
    assert spoken_number("+33612345678") == "06 12 34 56 78"


@pytest.mark.parametrize(("raw", "hours"), [("1h", 1), ("24h", 24), ("7d", 168), ("30m", 0.5), (None, 24), (" 6H ", 6)])
def test_windows(raw: str | None, hours: float) -> None:
    """Windows are durations in minutes, hours or days (default 24h)."""
    assert stats.parse_window(raw).duration == timedelta(hours=hours)


LOG_LINES = [
    ("[FLOW] conv_abc123, state=START, turn=0", ("[FLOW]", "conv_abc123", {"state": "START", "turn": "0"})),
    ("[STATE_CHANGE] conv_abc123: START → QUALIF_NAME",
     ("[STATE_CHANGE]", "conv_abc123", {"from_state": "START", "to_state": "QUALIF_NAME"})),
    ("[STATE_CHANGE] conv_x: WAIT_CONFIRM -> TRANSFERRED",
     ("[STATE_CHANGE]", "conv_x", {"from_state": "WAIT_CONFIRM", "to_state": "TRANSFERRED"})),
    ('INFO 2026-02-07 10:00:00 [SLOTS_SENT] c1, channel=voice, length=287, msg="Très bien, trois créneaux"',
     ("[SLOTS_SENT]", "c1", {"channel": "voice", "length": "287", "msg": "Très bien, trois créneaux"})),
    ("recovery_limit_reached c2, field=phone, attempts=3, to=TRANSFERRED",
     ("recovery_limit_reached", "c2", {"field": "phone", "attempts": "3", "to": "TRANSFERRED"})),
    ("SESSION_EXPIRED c3, state=WAIT_CONFIRM, idle_s=960",
     ("SESSION_EXPIRED", "c3", {"state": "WAIT_CONFIRM", "idle_s": "960"})),
    ("warning: session expirée conv_id=c4", ("SESSION_EXPIRED", "c4", {})),
    ('{"event": "[BOOKING_RESULT] c5, success=False", "tag": "[BOOKING_RESULT]", '
     '"timestamp": "2026-02-07T10:00:00.000+00:00"}',
     ("[BOOKING_RESULT]", "c5", {"success": "False"})),
]


@pytest.mark.parametrize(("line", "expected"), LOG_LINES)
def test_log_lines_are_recognised(line: str, expected: tuple[str, str, dict[str, str]]) -> None:
    """The seed's lines are read whatever the prefix, arrow, separator or JSON wrapping."""
    record = stats.parse_log_line(line)
    assert record is not None
    assert (record.tag, record.conv_id, dict(record.values)) == expected


@pytest.mark.parametrize("line", ["", "config_warning message=x", "[SLOTS_SENT] len=412", "GET /metrics 200"])
def test_other_lines_are_ignored(line: str) -> None:
    """Lines that are not one of the seed's patterns with a conversation are skipped."""
    assert stats.parse_log_line(line) is None


def test_empty_facts_give_zeros() -> None:
    """The pure answers on nothing: zeros, no division by zero, no target judged."""
    answer = stats.bookings([], stats.parse_window("1h"), datetime(2026, 3, 3, tzinfo=UTC))
    assert answer["conversion_rate"] == answer["abandon_rate"] == answer["total_sessions"] == 0
    assert all(t["meets"] is None for t in answer["targets"])
    assert stats.diagnose([], None, None, source="logs", limits=build_limits({}))["dominant"] is None


def test_every_pattern_has_the_seed_recommendation() -> None:
    """Each of the seven patterns names an action and, except the FAQ, a real constant."""
    from service.config import CONSTANT_DEFAULTS

    known = set(CONSTANT_DEFAULTS) | {"RECOVERY_LIMITS"}
    for cause in stats.PATTERNS:
        rec = stats.RECOMMENDATIONS[cause]
        assert rec.action and rec.seed.startswith("§")
        assert rec.constant in known or (cause is stats.Cause.FAQ_WAIT_CONFIRM and rec.constant is None)
