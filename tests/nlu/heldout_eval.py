"""Scoring of the blind held-out set (``tests/nlu/data/heldout_blind``).

Turns are scored on the engine's one extraction pass (``nlu.extract``): a turn is right when
every field its writer expected is found as expected. Preferences are compared by meaning,
not by representation: the set of the practice's slots in the next 30 days that the
writer's constraints accept must equal the set the extracted preference accepts in the
calendar. Whole calls run through the text API of a real app on a SQLite file with a clock
set to the call's time: the final state, the name on the appointment, the constraints the
booked slot honours, what must never be asked (the states visited) and, for cancellations
and moves, which appointment was touched.

``python -m tests.nlu.heldout_eval`` prints per-class accuracy (``--failures`` lists misses).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx

from service.clock import FixedClock
from service.config import load_practice, load_settings
from service.engine import calendar, nlu
from service.engine.model import Slot
from service.engine.nlu.extract import ExtractContext, Extraction, extract
from service.engine.practice import Practice

DATA = Path(__file__).parent / "data" / "heldout_blind"
# The blind development set, same format: the one to tune on.
DEV = Path(__file__).parent / "data" / "dev_blind"
WEEKDAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
NOON = time(12, 0)
PREFERENCE_KEYS = frozenset({
    "wanted_dates", "excluded_weekdays", "excluded_dates", "wanted_weekdays", "period", "after", "before",
    "asap", "outside_hours", "any",
})
RELATIONS = {"other": "autre"}


def load(name: str, data: Path = DATA) -> list[dict[str, Any]]:
    """The records of one file of a blind set."""
    with (data / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --------------------------------------------------------------------------- preferences
def _hm(text: str) -> time:
    return time.fromisoformat(text)


def accepts(expected: dict[str, Any], slot: Slot) -> bool:
    """Whether the writer's constraints accept ``slot`` (local times)."""
    start, end = slot.start, slot.end
    day = start.date()
    if expected.get("wanted_dates") and day.isoformat() not in expected["wanted_dates"]:
        return False
    if expected.get("wanted_weekdays") and day.weekday() not in {WEEKDAYS[w] for w in expected["wanted_weekdays"]}:
        return False
    if day.weekday() in {WEEKDAYS[w] for w in expected.get("excluded_weekdays", ())}:
        return False
    if day.isoformat() in expected.get("excluded_dates", ()):
        return False
    period = expected.get("period")
    if period == "morning" and start.time() >= NOON:
        return False
    if period == "afternoon" and start.time() < NOON:
        return False
    if expected.get("after") and start.time() < _hm(expected["after"]):
        return False
    return not (expected.get("before") and (end.time() > _hm(expected["before"]) or end.date() != day))


def practice_slots(practice: Practice, now: datetime) -> list[Slot]:
    """Every slot the practice opens from ``now`` + lead time over the horizon (none taken)."""
    earliest = now + timedelta(minutes=practice.min_lead_minutes)
    today = now.astimezone(practice.timezone).date()
    length = timedelta(minutes=practice.slot_minutes)
    out = []
    for offset in range(practice.horizon_days + 1):
        day = today + timedelta(days=offset)
        if not calendar.is_open_day(practice, day):
            continue
        for utc, local in calendar.day_starts(practice, day):
            if utc >= earliest:
                out.append(Slot(local, local + length))
    return out


def predicted_starts(practice: Practice, extraction: Extraction, now: datetime) -> frozenset[datetime]:
    """The slot starts the extracted preference accepts, as the calendar searches them."""
    pref = extraction.preference
    if pref is None:
        return frozenset()
    return frozenset(s.start for s in calendar.candidates(practice, pref, now, frozenset()))


def preference_ok(practice: Practice, expected: dict[str, Any], extraction: Extraction, now: datetime) -> bool:
    """The extracted preference means what the writer expected."""
    if expected.get("outside_hours"):
        return extraction.outside_hours
    constraints = {k for k in expected if k in PREFERENCE_KEYS} - {"asap", "any", "outside_hours"}
    if expected.get("asap") and not (extraction.preference is not None and extraction.preference.asap):
        return False
    if expected.get("any") and extraction.preference is None:
        return False
    if not constraints:
        return True
    wanted = frozenset(s.start for s in practice_slots(practice, now) if accepts(expected, s))
    return predicted_starts(practice, extraction, now) == wanted


# --------------------------------------------------------------------------- turns
def _name_ok(expected: Any, found: Any) -> bool:
    if found is None:
        return False
    return bool(found.first == expected.get("first") and found.last == expected.get("last"))


def _target(extraction: Extraction, appointments: list[dict[str, Any]], tz: Any) -> int | str:
    hint = extraction.target
    if hint is None:
        return "unspecified"
    matches = []
    for i, appointment in enumerate(appointments):
        start = datetime.fromisoformat(appointment["start"]).astimezone(tz)
        if hint.day is not None and start.date() != hint.day:
            continue
        if hint.weekday is not None and start.weekday() != hint.weekday:
            continue
        if hint.day_of_month is not None and start.day != hint.day_of_month:
            continue
        if hint.at is not None and start.time().replace(second=0) != hint.at.replace(second=0):
            continue
        patient = hint.patient
        if patient is not None and patient.full and patient.full.casefold() not in appointment["patient"].casefold():
            continue
        matches.append(i)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        if hint.relation and not (hint.day or hint.weekday is not None or hint.day_of_month or hint.at):
            # "celui de ma fille": the relation alone; the scorer cannot know who the caller is.
            return "relation"
        return "ambiguous" if len(matches) < len(appointments) or hint != type(hint)() else "unspecified"
    return "none"


def check_turn(record: dict[str, Any], practice: Practice) -> list[str]:
    """The fields of one held-out turn the extraction got wrong (empty: right)."""
    now = datetime.fromisoformat(record["now"])
    slots = tuple(nlu.SlotRef(datetime.fromisoformat(s), "") for s in record.get("proposed", ()))
    found = extract(record["text"], ExtractContext(record["state"], now.astimezone(practice.timezone), slots, practice))
    expected = record["expected"]
    wrong = []
    if "intent" in expected:
        got = found.intent
        want = expected["intent"]
        if want == "question":
            ok = bool(got and got.startswith("faq:"))
        elif want == "other":
            ok = got not in ("book", "cancel", "modify", "human") and not (got or "").startswith("faq:")
        else:
            ok = got == want
        if not ok:
            wrong.append(f"intent {got!r} != {want!r}")
    if "name" in expected:
        want = expected["name"]
        if want == "refused":
            if found.name is not None or found.name_issue not in ("refused", "question"):
                wrong.append(f"name {found.name} / {found.name_issue} != refused")
        elif not _name_ok(want, found.name):
            wrong.append(f"name {found.name} != {want}")
    if "patient" in expected and not _name_ok(expected["patient"], found.patient):
        wrong.append(f"patient {found.patient} != {expected['patient']}")
    if "relation" in expected:
        want = RELATIONS.get(expected["relation"], expected["relation"])
        if found.relation != want:
            wrong.append(f"relation {found.relation!r} != {want!r}")
    if "phone" in expected:
        got = found.phone
        national = "0" + got[3:] if got and got.startswith("+33") else got
        if national != expected["phone"]:
            wrong.append(f"phone {got!r} != {expected['phone']!r}")
    if "choice" in expected:
        want = expected["choice"]
        got_choice = found.choice
        ok = got_choice == want - 1 if isinstance(want, int) else got_choice == want
        if not ok:
            wrong.append(f"choice {got_choice!r} != {want!r}")
    if any(k in expected for k in PREFERENCE_KEYS) and not preference_ok(practice, expected, found, now):
        wrong.append(f"preference {found.preference} (outside_hours={found.outside_hours}) != "
                     f"{ {k: v for k, v in expected.items() if k in PREFERENCE_KEYS} }")
    if "target" in expected:
        got_target = _target(found, record.get("appointments", []), practice.timezone)
        if got_target != expected["target"] and not (got_target == "relation" and isinstance(expected["target"], int)):
            wrong.append(f"target {got_target!r} != {expected['target']!r}")
    if expected.get("correction") and not found.corrected:
        wrong.append("correction not seen")
    if expected.get("filler") and not found.filler:
        wrong.append("filler not seen")
    return wrong


# --------------------------------------------------------------------------- whole calls
@dataclass
class CallResult:
    """What one scripted call did, and what was wrong with it."""

    record: dict[str, Any]
    states: list[str]
    replies: list[str]
    wrong: list[str]


@contextlib.asynccontextmanager
async def live_app(data_dir: Path, clock: FixedClock) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """A real app on a SQLite file in ``data_dir`` with ``clock``, and a client to it."""
    from service.http.app import create_app
    from telemetry import Telemetry

    settings = load_settings({"RDV_DATA_DIR": str(data_dir), "RDV_SLOT_HOLD_SECONDS": "0"})
    telemetry = Telemetry.create(log_format="text", log_pii=False, trace_secret=b"heldout", version="test",
                                 log_stream=io.StringIO(), enabled=False)
    app = create_app(settings, clock=clock, telemetry=telemetry, reaper=False)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                   base_url="http://rdv.test") as client:
        yield app, client


async def seed_appointments(app: Any, record: dict[str, Any]) -> list[str]:
    """Book the caller's existing appointments (under their number), as turns of earlier calls."""
    from service.engine.model import Conversation
    from service.engine.states import Channel
    from service.storage.base import BookingWrite, EventRecord

    store = app.state.services.store
    ids = []
    made = datetime.fromisoformat(record["now"]) - timedelta(days=3)
    for i, appointment in enumerate(record.get("appointments", ())):
        start = datetime.fromisoformat(appointment["start"])
        slot = Slot(start, start + timedelta(minutes=30))
        conv_id = f"earlier_{record['id']}_{i}"
        booking_id = uuid.uuid4().hex
        phone = record.get("caller_phone") or "+33699999999"
        confirmed = EventRecord(conv_id, made, "AppointmentConfirmed",
                                {"slot_label": "", "name": appointment["patient"], "slot_start": start.isoformat()})
        await store.save_turn(
            Conversation.new(conv_id, Channel.TEXT, made, caller_phone=phone), None, {}, None, [confirmed],
            booking=BookingWrite(booking_id, slot, conv_id, appointment["patient"], phone, made),
        )
        ids.append(booking_id)
    return ids


def caller_id(number: str) -> str:
    """The call's caller id. A writer's number that is not a valid French number (e.g. a
    +33 6 90… number, which belongs to Guadeloupe's +590) stands for "the number is shown":
    Vapi would report a real one, so a valid mobile number replaces it."""
    import phonenumbers

    try:
        if phonenumbers.is_valid_number(phonenumbers.parse(number, "FR")):
            return number
    except phonenumbers.NumberParseException:
        pass
    return "+33612345678"


ASKED_IN = {"name": "QUALIF_NAME", "preference": "QUALIF_PREF", "phone": "QUALIF_PHONE"}


async def run_call(record: dict[str, Any], practice: Practice) -> CallResult:
    """Play one held-out call through the text API and check its expectations."""
    expected = record["expected"]
    clock = FixedClock(datetime.fromisoformat(record["now"]))
    conv_id = f"heldout_{record['id']}"
    states: list[str] = []
    replies: list[str] = []
    wrong: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with live_app(Path(tmp), clock) as (app, client):
            existing = await seed_appointments(app, record)
            extra = {"caller_phone": caller_id(record["caller_phone"])} if record.get("caller_phone") else {}
            for text in record["turns"]:
                response = await client.post(f"/api/conversations/{conv_id}/messages", json={"text": text, **extra})
                if response.status_code != 200:
                    wrong.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    break
                answer = response.json()
                states.append(answer["state"])
                replies.append(answer["reply"])
                clock.advance(seconds=20)
                if answer["ended"]:
                    break
            timeline = (await client.get(f"/api/conversations/{conv_id}")).json()
            all_bookings = await _bookings(app)
    final = states[-1] if states else "none"
    if final != expected["final"]:
        wrong.append(f"final {final} != {expected['final']}")
    visited = {e["data"]["to_state"] for e in timeline.get("events", []) if e["kind"] == "StateChanged"}
    for what in expected.get("never_ask", ()):
        if ASKED_IN.get(what) in visited:
            wrong.append(f"asked {what} again")
    mine = [b for b in all_bookings if b["conv_id"] == conv_id and b["cancelled_at"] is None]
    if expected["final"] == "CONFIRMED":
        if len(mine) != 1:
            wrong.append(f"{len(mine)} active bookings")
        else:
            booking = mine[0]
            if expected.get("name_on_booking") and booking["name"] != expected["name_on_booking"]:
                wrong.append(f"booked for {booking['name']!r} != {expected['name_on_booking']!r}")
            start = datetime.fromisoformat(booking["slot_start"]).astimezone(practice.timezone)
            if not accepts(expected, Slot(start, start + timedelta(minutes=practice.slot_minutes))):
                wrong.append(f"booked {start.isoformat()} breaks the constraints")
    if "target" in expected and existing:
        target = existing[expected["target"]]
        touched = {b["id"] for b in all_bookings if b["cancelled_at"] is not None}
        if target not in touched:
            wrong.append("the designated appointment was not cancelled/moved")
        if touched - {target}:
            wrong.append("another appointment was cancelled")
    if expected["final"] == "TRANSFERRED" and any(b["cancelled_at"] is not None for b in all_bookings):
        wrong.append("an appointment was cancelled before the transfer")
    return CallResult(record, states, replies, wrong)


async def _bookings(app: Any) -> list[dict[str, Any]]:
    store = app.state.services.store
    rows = await store.conversations_seen_since(datetime(2000, 1, 1, tzinfo=UTC))
    out: list[dict[str, Any]] = []
    for row in rows:
        timeline = await store.timeline(row["conv_id"])
        out.extend(timeline["bookings"] if timeline else [])
    return out


# --------------------------------------------------------------------------- report
def by_class(results: Iterable[tuple[str, bool]]) -> dict[str, tuple[int, int]]:
    """(right, total) per class, and "all"."""
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for cls, ok in results:
        for key in (cls, "all"):
            total[key] += 1
            right[key] += ok
    return {k: (right[k], total[k]) for k in sorted(total)}


def evaluate_turns(
    practice: Practice, data: Path = DATA
) -> tuple[dict[str, tuple[int, int]], list[tuple[dict[str, Any], list[str]]]]:
    """Per-class accuracy of the turns and the misses."""
    misses = []
    results = []
    for record in load("turns.jsonl", data):
        wrong = check_turn(record, practice)
        results.append((record["class"], not wrong))
        if wrong:
            misses.append((record, wrong))
    return by_class(results), misses


def evaluate_calls(practice: Practice, data: Path = DATA) -> tuple[dict[str, tuple[int, int]], list[CallResult]]:
    """Per-class success of the whole calls and the failed ones."""

    async def run_all() -> list[CallResult]:
        return [await run_call(r, practice) for r in load("calls.jsonl", data)]

    results = asyncio.run(run_all())
    return by_class((r.record["class"], not r.wrong) for r in results), [r for r in results if r.wrong]


def table(title: str, scores: dict[str, tuple[int, int]]) -> str:
    """A small Markdown table of per-class accuracy."""
    lines = [f"| {title} | right | total | accuracy |", "|---|---|---|---|"]
    for cls, (right, total) in scores.items():
        lines.append(f"| {cls} | {right} | {total} | {100 * right / total:.0f} % |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="score a blind set (the held-out one unless --dev)")
    parser.add_argument("--failures", action="store_true", help="list every miss")
    parser.add_argument("--dev", action="store_true", help="score the blind development set instead")
    parser.add_argument("--turns-only", action="store_true", help="skip the whole calls")
    args = parser.parse_args()
    practice = load_practice(None)
    data = DEV if args.dev else DATA
    turn_scores, turn_misses = evaluate_turns(practice, data)
    call_scores, call_misses = ({}, []) if args.turns_only else evaluate_calls(practice, data)
    print(table("turns", turn_scores))
    print()
    print(table("calls", call_scores))
    if args.failures:
        grouped: dict[str, list[str]] = defaultdict(list)
        for record, wrong in turn_misses:
            grouped[record["class"]].append(
                f"  {record['id']} [{record['state']}] {record['text']!r}: {'; '.join(wrong)}")
        for cls, lines in sorted(grouped.items()):
            print(f"\nturns / {cls}")
            print("\n".join(lines))
        for result in call_misses:
            print(f"\ncall {result.record['id']} ({result.record['class']}): {'; '.join(result.wrong)}")
            for text, state, reply in zip(result.record["turns"], result.states, result.replies, strict=False):
                print(f"    > {text}\n    < [{state}] {reply}")


if __name__ == "__main__":
    main()
