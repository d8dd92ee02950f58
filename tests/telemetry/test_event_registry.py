"""The event registry: one entry per engine event, and one fold for the store and the log."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta

import pytest

from service import stats
from service.engine import events as ev
from service.engine.model import Conversation
from service.engine.states import (
    BookingResult,
    Channel,
    Field,
    MissField,
    MissReason,
    Outcome,
    OverrideIntent,
    Purpose,
    State,
    TransferReason,
)
from service.storage.codec import event_records
from telemetry import events
from telemetry.facts import CallFacts
from tests.telemetry.conftest import Captured

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SLOT = AT + timedelta(days=1)

# One call's events, every engine event type at least once (the FAQ both after an override and
# alone in START, as the engine emits them).
CALL: tuple[ev.Event, ...] = (
    ev.ConversationStarted(Channel.VOICE),
    ev.TurnReceived(State.START, 0),
    ev.FaqAnswered("address", State.START),
    ev.TurnReceived(State.START, 1),
    ev.StateChanged(State.START, State.QUALIF_NAME, AT),
    ev.FillerDetected(State.QUALIF_NAME),
    ev.RecoveryStepped(Field.NAME, 1),
    ev.NotUnderstood(State.QUALIF_NAME, MissField.NAME, MissReason.NOTHING_FOUND, 2),
    ev.StateChanged(State.QUALIF_NAME, State.QUALIF_PREF, AT),
    ev.StateChanged(State.QUALIF_PREF, State.WAIT_CONFIRM, AT),
    ev.SlotsSent(Channel.VOICE, "Je vous propose lundi à 9 heures, « mardi », ou mercredi. " * 8, (SLOT,)),
    ev.IntentOverridden(State.WAIT_CONFIRM, OverrideIntent.FAQ.value, State.WAIT_CONFIRM),
    ev.FaqAnswered("hours", State.WAIT_CONFIRM),
    ev.Interrupted(1),
    ev.BookingAttempted(1, SLOT, 0),
    ev.BookingResulted(BookingResult.SLOT_TAKEN, SLOT, 0),
    ev.BookingRetried(1, "lundi matin"),
    ev.SlotsSent(Channel.VOICE, "Lundi à 10 heures ?", (SLOT,)),
    ev.BookingAttempted(1, SLOT, 1),
    ev.BookingResulted(BookingResult.SUCCESS, SLOT, 1),
    ev.AppointmentConfirmed("lundi 3 mars 10h00", "Jean Dupont", SLOT),
    ev.BookingCancelled(SLOT),
    ev.RecoveryLimitReached(Field.PHONE, 3, State.TRANSFERRED),
    ev.IntentOverridden(State.QUALIF_PHONE, OverrideIntent.HUMAN.value, State.TRANSFERRED),
    ev.AntiLoopTriggered(40, 40, State.QUALIF_PHONE),
    ev.SessionExpired(State.QUALIF_PHONE, 1900.0),
    ev.Transferred(TransferReason.NO_SLOT, State.QUALIF_PREF, "samedi"),
    ev.ConversationEnded(Channel.VOICE, Outcome.TRANSFERRED, State.TRANSFERRED, 9, None, Purpose.BOOK),
)

# What both sources tell (the row-held facts, state and outcome, are compared apart).
TOLD = (
    "slot_lengths", "booking_results", "booking_retries", "interruptions", "anti_loop", "expired",
    "recovery_limits", "recovery_steps", "faq_states", "human_requested", "transfer_reason",
    "fillers", "states_seen", "confirmed_logged", "cancelled_logged",
)


def test_every_engine_event_has_an_entry() -> None:
    """Adding an event to the engine without saying what it means to telemetry fails here."""
    missing = {cls.__name__ for cls in typing.get_args(ev.Event)} - {cls.__name__ for cls in events.EVENTS}
    assert not missing, f"no telemetry.events entry for {sorted(missing)}"
    assert {type(e) for e in CALL} == set(typing.get_args(ev.Event)), "the sample call covers every event"


def test_kinds_and_tags_come_from_the_registry() -> None:
    """Stored kinds are class names, each log tag belongs to one line, and the stats read the
    kinds whose fold tells something the conversation row does not."""
    assert stats.EVENT_KINDS == events.EVENT_KINDS
    for cls, spec in events.EVENTS.items():
        assert spec.kind == cls.__name__
    lines = [line.tag for spec in events.EVENTS.values() for line in spec.lines]
    assert len(lines) == len(set(lines)) == len(events.LOG_TAGS)
    assert ev.TurnReceived.__name__ in events.EVENT_KINDS
    assert ev.ConversationEnded.__name__ not in events.EVENT_KINDS  # the row has the outcome
    assert ev.NotUnderstood.__name__ not in events.EVENT_KINDS  # tells the checklist nothing


def _conversation() -> Conversation:
    return Conversation.new("conv_registry", Channel.VOICE, AT)


def _from_store() -> CallFacts:
    facts = CallFacts("conv_registry")
    for record in event_records("conv_registry", CALL, AT):
        events.fold(facts, record.kind, record.data)
    return facts


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_log_line_folds_like_the_stored_event(log_format: str) -> None:
    """The events as the store keeps them and as the observer logs them (then read back by
    ``rdv diagnose --logs``) give the same facts."""
    cap = Captured(log_format=log_format)
    cap.telemetry.observe(_conversation(), CALL, {})
    from_log = stats.facts_from_log(cap.lines())
    assert [f.conv_id for f in from_log] == ["conv_registry"]
    stored = _from_store()
    for name in TOLD:
        assert getattr(from_log[0], name) == getattr(stored, name), name
    # The FAQ after an override is counted once, the FAQ in START once too.
    assert stored.faq_states == [State.START.value, State.WAIT_CONFIRM.value]
    assert stored.slot_lengths == [len(typing.cast(ev.SlotsSent, CALL[10]).message), 19]
    assert from_log[0].outcome == Outcome.TRANSFERRED.value
    assert from_log[0].turns == 9


def test_the_row_wins_over_the_events_in_the_store() -> None:
    """State, outcome, turns and channel of the store's answers are the conversation row's."""
    row = {"conv_id": "conv_registry", "channel": "text", "state": "WAIT_CONFIRM", "outcome": None,
           "turn_count": 4, "ended_reason": None, "last_seen_at": AT}
    [facts] = stats.facts_from_store([row], event_records("conv_registry", CALL, AT))
    assert (facts.channel, facts.final_state, facts.outcome, facts.turns) == ("text", "WAIT_CONFIRM", None, 4)
    assert facts.transfer_reason == TransferReason.NO_SLOT.value
