"""``rdv replay``: what the engine of the running code would have done with stored calls.

Every caller turn of each stored conversation is given again to the pure engine, in memory,
with its original time, channel, caller id and barge-in flag, the practice configuration
(the configured one, or ``--practice FILE`` to try a new one) and the calendar as it was at
that moment: the bookings that existed then, minus the conversation's own. Nothing is
written to the store. For each conversation: the stored outcome and the replayed one, the
first turn whose reply or state differs (both replies), and a verdict:

* ``improved``: it did not confirm and would now (e.g. TRANSFERRED → CONFIRMED);
* ``regressed``: it confirmed and would not any more;
* ``changed``: another outcome, neither of those;
* ``unchanged``: the same outcome;
* ``not_replayable``: nothing to replay, with the reason (no stored turns, a stored state
  this engine does not know, an engine error); nothing crashes on such a conversation.

``--fail-on-regression`` exits 3 when any conversation regressed, so a deployment pipeline
can gate on last week's real traffic. Works on SQLite and PostgreSQL stores and on a copy of
a SQLite file (``--database sqlite:///copy.db``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.config import load_practice, load_settings
from service.engine.model import (
    Book,
    BookingAt,
    BookingDone,
    BookingRef,
    BookingsFound,
    CallEnded,
    CallerSaid,
    CancelBooking,
    CancelDone,
    Conversation,
    Decision,
    FindBookingAt,
    FindBookings,
    Limits,
    RdvError,
    TurnInput,
)
from service.engine.practice import Practice
from service.engine.states import BookingResult, Channel, Outcome
from service.engine.step import step
from service.misses import moment as parse_moment
from service.storage import open_store
from service.storage.base import BookingRow, ReplaySource, TurnRecord
from service.tools.transport import ToolError

VERDICTS = ("improved", "regressed", "changed", "unchanged", "not_replayable")
# Outcomes the telephony side or the reaper gives (not a caller turn): replayed the same way.
CLOSED_FROM_OUTSIDE = frozenset({Outcome.ABANDONED, Outcome.EXPIRED})
REGRESSION_EXIT = 3


@dataclass(frozen=True, slots=True)
class Difference:
    """The first turn whose reply or state differs."""

    turn: int
    text: str
    stored_state: str
    replayed_state: str
    stored_reply: str
    replayed_reply: str


@dataclass(frozen=True, slots=True)
class Replayed:
    """One conversation, stored and replayed."""

    conv_id: str
    channel: str
    turns: int
    stored: str
    replayed: str
    verdict: str
    first_difference: Difference | None = None
    reason: str | None = None


class Calendar:
    """The stored bookings as they were at each moment, swept forward in time: the replay
    visits every turn of every conversation in time order, as they happened."""

    def __init__(self, rows: Sequence[BookingRow]) -> None:
        changes: list[tuple[datetime, int, BookingRow]] = []
        for row in rows:
            changes.append((row.created_at, 1, row))
            if row.cancelled_at is not None:
                changes.append((row.cancelled_at, 0, row))
        changes.sort(key=lambda c: (c[0], c[1]))
        self._changes = changes
        self._next = 0
        self.active: dict[str, BookingRow] = {}
        self._starts: frozenset[datetime] | None = frozenset()

    def advance(self, moment: datetime) -> None:
        """Apply every booking and cancellation made up to ``moment``."""
        while self._next < len(self._changes) and self._changes[self._next][0] <= moment:
            _, added, row = self._changes[self._next]
            if added:
                self.active[row.booking_id] = row
            else:
                self.active.pop(row.booking_id, None)
            self._next += 1
            self._starts = None

    def starts(self) -> frozenset[datetime]:
        """Starts of every booking active now."""
        if self._starts is None:
            self._starts = frozenset(b.slot.start for b in self.active.values())
        return self._starts


@dataclass
class Own:
    """One replayed conversation's view of the calendar: the stored bookings of others, plus
    what the replay itself booked or cancelled."""

    conv_id: str
    calendar: Calendar
    booked: dict[str, BookingRow] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)

    def bookings(self) -> list[BookingRow]:
        others = [b for b in self.calendar.active.values() if b.conv_id != self.conv_id
                  and b.booking_id not in self.cancelled]
        return others + [b for b in self.booked.values() if b.booking_id not in self.cancelled]

    def taken(self) -> frozenset[datetime]:
        mine = [b for b in self.calendar.active.values() if b.conv_id == self.conv_id]
        starts = self.calendar.starts()
        if mine or self.cancelled:
            starts = frozenset(b.slot.start for b in self.bookings())
        elif self.booked:
            starts = starts | {b.slot.start for b in self.booked.values() if b.booking_id not in self.cancelled}
        return starts


def _perform(action: Any, conv: Conversation, moment: datetime, cal: Own) -> TurnInput:
    """The store's answer to an engine action, from the replay calendar (in memory)."""
    if isinstance(action, Book):
        if action.slot.start.astimezone(UTC) in cal.taken():
            return BookingDone(BookingResult.SLOT_TAKEN)
        booking_id = f"replay-{len(cal.booked) + 1}"
        cal.booked[booking_id] = BookingRow(
            booking_id, conv.conv_id, replace(action.slot, start=action.slot.start.astimezone(UTC),
                                               end=action.slot.end.astimezone(UTC)),
            action.name, action.phone, moment, None,
        )
        if action.replaces:
            cal.cancelled.add(action.replaces)
        return BookingDone(BookingResult.SUCCESS, booking_id)
    if isinstance(action, FindBookings):
        found = sorted(
            (b for b in cal.bookings() if action.phone and b.phone == action.phone and b.slot.start > moment),
            key=lambda b: b.slot.start,
        )
        return BookingsFound(tuple(BookingRef(b.booking_id, b.slot, b.name) for b in found))
    if isinstance(action, FindBookingAt):
        hit = next((b for b in cal.bookings() if b.slot.start == action.start), None)
        return BookingAt(None if hit is None else BookingRef(hit.booking_id, hit.slot, hit.name))
    if isinstance(action, CancelBooking):
        ok = any(b.booking_id == action.booking_id for b in cal.bookings())
        if ok:
            cal.cancelled.add(action.booking_id)
        return CancelDone(ok)
    raise RdvError(f"the replay cannot perform {type(action).__name__}")


def _run_turn(
    conv: Conversation, turn: TurnRecord, limits: Limits, practice: Practice, cal: Own
) -> tuple[Conversation, str]:
    """One caller turn through the engine, its actions answered from the replay calendar."""
    decision: Decision = step(conv, CallerSaid(turn.text, turn.interrupted), turn.at, limits, practice, cal.taken())
    replies = [decision.reply]
    while decision.action is not None:
        result = _perform(decision.action, decision.conversation, turn.at, cal)
        decision = step(decision.conversation, result, turn.at, limits, practice, cal.taken())
        replies.append(decision.reply)
    return decision.conversation, " ".join(r for r in replies if r)


def _outcome(conv: Conversation) -> str:
    return conv.outcome.value if conv.outcome else "active"


def verdict(stored: str, replayed: str) -> str:
    """improved / regressed / changed / unchanged for two outcomes."""
    if stored == replayed:
        return "unchanged"
    if replayed == Outcome.CONFIRMED.value:
        return "improved"
    if stored == Outcome.CONFIRMED.value:
        return "regressed"
    return "changed"


class Replay:
    """One stored conversation being replayed, a turn at a time."""

    def __init__(
        self, stored: Conversation, turns: Sequence[TurnRecord], calendar: Calendar, ended_reason: str | None
    ) -> None:
        self.stored = stored
        self.turns = turns
        self.ended_reason = ended_reason
        self.cal = Own(stored.conv_id, calendar)
        self.conv = Conversation.new(
            stored.conv_id, stored.channel, turns[0].at if turns else stored.created_at,
            caller_phone=stored.caller_phone, vapi_call_id=stored.vapi_call_id,
        )
        self.first: Difference | None = None
        self.failure: str | None = None if turns else (
            "no stored turns (a call that ended before the caller spoke, or an older schema)"
        )

    def play(self, index: int, limits: Limits, practice: Practice) -> None:
        """Replay turn ``index`` (the calendar is already swept to its time)."""
        if self.failure is not None:
            return
        turn = self.turns[index]
        try:
            self.conv, reply = _run_turn(self.conv, turn, limits, practice, self.cal)
        except (RdvError, ValueError, KeyError) as exc:
            self.failure = f"the engine could not replay turn {turn.turn}: {type(exc).__name__}: {exc}"
            return
        if self.first is None and (reply != turn.reply or self.conv.state.value != turn.state_after):
            self.first = Difference(turn.turn, turn.text, turn.state_after, self.conv.state.value, turn.reply, reply)

    def result(self, limits: Limits, practice: Practice) -> Replayed:
        """The verdict once every turn is replayed."""
        stored = self.stored
        stored_outcome = _outcome(stored)
        base = Replayed(stored.conv_id, stored.channel.value, len(self.turns), stored_outcome, "-", "not_replayable")
        if self.failure is not None:
            return replace(base, reason=self.failure)
        conv = self.conv
        if conv.outcome is None and stored.outcome in CLOSED_FROM_OUTSIDE:
            # The call ended on the telephony side (or idled out): end the replay the same way.
            conv = step(conv, CallEnded(self.ended_reason), stored.last_seen_at, limits, practice).conversation
            if stored.outcome is Outcome.EXPIRED and conv.outcome is Outcome.ABANDONED:
                conv = replace(conv, outcome=Outcome.EXPIRED)
        replayed = _outcome(conv)
        return replace(base, replayed=replayed, verdict=verdict(stored_outcome, replayed), first_difference=self.first)


def replay_all(
    source: ReplaySource,
    practice: Practice,
    limits: Mapping[Channel, Limits],
    *,
    outcome: str | None = None,
    limit: int | None = None,
    progress: Any = None,
) -> list[Replayed]:
    """Replay every conversation of ``source`` (filtered by stored ``outcome``): all their
    turns in time order, the stored calendar swept along."""
    by_conv: dict[str, list[TurnRecord]] = {}
    for turn in source.turns:
        by_conv.setdefault(turn.conv_id, []).append(turn)
    chosen = sorted(
        (c for c in source.conversations if outcome is None or _outcome(c) == outcome), key=lambda c: c.created_at
    )
    if limit is not None:
        chosen = chosen[:limit]
    calendar = Calendar(source.bookings)
    replays = [Replay(c, by_conv.get(c.conv_id, []), calendar, source.ended_reasons.get(c.conv_id)) for c in chosen]
    order = sorted(
        ((turn.at, i, n) for i, r in enumerate(replays) for n, turn in enumerate(r.turns)), key=lambda x: x[0]
    )
    for done, (moment, i, n) in enumerate(order, start=1):
        calendar.advance(moment)
        replays[i].play(n, limits[replays[i].stored.channel], practice)
        if progress is not None and (done % 200 == 0 or done == len(order)):
            progress(done, len(order))
    return [r.result(limits[r.stored.channel], practice) for r in replays]


def replay_conversation(
    stored: Conversation,
    turns: Sequence[TurnRecord],
    bookings: Sequence[BookingRow],
    practice: Practice,
    limits: Mapping[Channel, Limits],
    ended_reason: str | None = None,
) -> Replayed:
    """Replay one stored conversation in memory; never raises on what it cannot replay."""
    source = ReplaySource([stored], {stored.conv_id: ended_reason}, list(turns), list(bookings))
    return replay_all(source, practice, limits)[0]


def totals(results: Iterable[Replayed]) -> dict[str, int]:
    """How many conversations got each verdict."""
    counts = Counter(r.verdict for r in results)
    return {v: counts.get(v, 0) for v in VERDICTS}


# --------------------------------------------------------------------------- command line
def register(subparsers: Any) -> None:
    """Add ``rdv replay`` to the command line."""
    p = subparsers.add_parser(
        "replay", help="re-run stored conversations through this engine, in memory, and compare outcomes",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--database", default=None,
                   help="store to read (default: RDV_DATABASE_URL, else the SQLite file in RDV_DATA_DIR); "
                        "e.g. sqlite:///copy.db or postgresql://…")
    p.add_argument("--since", default=None, help="window start: ISO time or a look-back like 24h, 7d (default 24h)")
    p.add_argument("--until", default=None, help="window end, ISO time with zone (default now)")
    p.add_argument("--outcome", default=None, choices=[o.value for o in Outcome] + ["active"],
                   help="only conversations that stored this outcome")
    p.add_argument("--conv", default=None, help="only this conversation id")
    p.add_argument("--limit", type=int, default=None, help="at most this many conversations (oldest first)")
    p.add_argument("--practice", default=None, help="practice TOML to replay with (default: the configured one)")
    p.add_argument("--json", action="store_true", help="print every result and the totals as JSON")
    p.add_argument("--fail-on-regression", action="store_true",
                   help=f"exit {REGRESSION_EXIT} when a stored CONFIRMED conversation would no longer confirm")
    p.set_defaults(func=main)


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\rreplay [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _text_report(results: Sequence[Replayed]) -> str:
    lines = []
    for r in results:
        if r.verdict == "unchanged" and r.first_difference is None:
            continue
        head = f"{r.conv_id} [{r.channel}] {r.stored} → {r.replayed}: {r.verdict}"
        if r.reason:
            head += f" ({r.reason})"
        lines.append(head)
        d = r.first_difference
        if d is not None:
            lines.append(f"  turn {d.turn} « {d.text} »")
            lines.append(f"    stored   [{d.stored_state}] {d.stored_reply}")
            lines.append(f"    replayed [{d.replayed_state}] {d.replayed_reply}")
    counts = totals(results)
    lines.append(f"{len(results)} conversations: " + ", ".join(f"{v} {counts[v]}" for v in VERDICTS))
    return "\n".join(lines)


async def _read(database: str | None, since: datetime, until: datetime, conv: str | None) -> ReplaySource:
    settings = load_settings()
    url = database if database is not None else settings.database_url
    if url == "memory:":
        raise ToolError("RDV_DATABASE_URL=memory: keeps nothing to replay; use --database")
    if url is not None and url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise ToolError(f"--database {url}: no such SQLite file")
    store = open_store(url, settings.data_dir, timeout=settings.store_timeout_seconds)
    await store.open()
    try:
        return await store.replay_source(since, until, conv)
    finally:
        await store.close()


def main(args: argparse.Namespace) -> int:
    """Run ``rdv replay``."""
    if args.limit is not None and args.limit < 0:
        raise ToolError("--limit must be 0 or more")
    now = datetime.now(UTC)
    until = parse_moment(args.until, now, "--until")
    since = parse_moment(args.since if args.since is not None else "24h", until, "--since")
    settings = load_settings()
    practice = load_practice(Path(args.practice) if args.practice else settings.practice_file)
    source = asyncio.run(_read(args.database, since, until, args.conv))
    progress = _progress_bar if sys.stderr.isatty() and not args.json else None
    results = replay_all(source, practice, settings.limits, outcome=args.outcome, limit=args.limit, progress=progress)
    if args.json:
        print(json.dumps({"totals": totals(results), "conversations": [asdict(r) for r in results]},
                         ensure_ascii=False, indent=2))
    else:
        print(_text_report(results))
    if args.fail_on_regression and any(r.verdict == "regressed" for r in results):
        return REGRESSION_EXIT
    return 0


__all__ = ["Replayed", "register", "replay_all", "replay_conversation", "totals", "verdict"]
