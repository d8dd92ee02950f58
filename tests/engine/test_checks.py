"""The pure ``step()`` per behaviour, without HTTP: the checks that hold in every state (expiry,
a closed conversation, anti-loop, filler, strong intent, FAQ), the retry counters, and the
stored form of counters and intents."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from service.engine import replies
from service.engine.events import (
    AntiLoopTriggered,
    ConversationStarted,
    FaqAnswered,
    FillerDetected,
    IntentOverridden,
    NotUnderstood,
    RecoveryLimitReached,
    RecoveryStepped,
    SessionExpired,
    Transferred,
)
from service.engine.model import CallEnded, CallerSaid, Context, Conversation, Decision, Limits
from service.engine.practice import Practice
from service.engine.states import (
    Channel,
    Field,
    Intent,
    MissField,
    Outcome,
    Retry,
    State,
    TransferReason,
)
from service.engine.step import step
from service.storage.codec import context_from_json, context_to_json
from tests.support import NOW

PHONE = "+33612345678"
GIBBERISH = "blablabla"
NO_NAME = "je sais pas"  # "blablabla" could be a surname


def conv_in(state: State, *, turns: int = 3, context: Context | None = None) -> Conversation:
    """A voice conversation with a caller id, ``turns`` turns into ``state``."""
    conv = Conversation.new("conv_c", Channel.VOICE, NOW, caller_phone=PHONE)
    return replace(conv, state=state, turn_count=turns, context=context or Context())


def say(conv: Conversation, text: str, limits: Limits, practice: Practice, at: timedelta = timedelta()) -> Decision:
    return step(conv, CallerSaid(text), NOW + at, limits, practice)


def test_a_conversation_idle_past_its_ttl_expires_and_starts_again(voice_limits: Limits, practice: Practice) -> None:
    conv = conv_in(State.QUALIF_PREF, context=Context(first_name="Jean", last_name="Dupont"))
    idle = timedelta(minutes=voice_limits.session_ttl_minutes, seconds=1)
    d = say(conv, "bonjour", voice_limits, practice, at=idle)
    assert SessionExpired(State.QUALIF_PREF, idle.total_seconds()) in d.events
    assert d.reply.startswith(replies.EXPIRED)
    assert d.conversation.epoch == 1 and d.conversation.turn_count == 1
    assert d.conversation.context.last_name is None  # nothing of the expired conversation is kept
    assert any(isinstance(e, ConversationStarted) for e in d.events)


def test_a_conversation_within_its_ttl_goes_on(voice_limits: Limits, practice: Practice) -> None:
    conv = conv_in(State.QUALIF_PREF, context=Context(first_name="Jean", last_name="Dupont"))
    d = say(conv, "le matin", voice_limits, practice, at=timedelta(minutes=voice_limits.session_ttl_minutes))
    assert not any(isinstance(e, SessionExpired) for e in d.events)
    assert d.conversation.epoch == 0 and d.conversation.state is State.WAIT_CONFIRM


def test_a_call_ended_then_spoken_to_again_starts_over(voice_limits: Limits, practice: Practice) -> None:
    ended = step(conv_in(State.QUALIF_NAME), CallEnded("customer-ended-call"), NOW, voice_limits, practice)
    assert ended.conversation.outcome is Outcome.ABANDONED
    d = say(ended.conversation, "bonjour", voice_limits, practice)
    assert d.reply.startswith(replies.RESUMED_AFTER_END)
    assert d.conversation.epoch == 1 and d.conversation.outcome is None


def test_a_closed_conversation_only_says_so(voice_limits: Limits, practice: Practice) -> None:
    confirmed = replace(conv_in(State.CONFIRMED), outcome=Outcome.CONFIRMED)
    d = say(confirmed, "je voudrais annuler", voice_limits, practice)
    assert (d.reply, d.directive, d.conversation.state) == (replies.CLOSED_CONFIRMED, "end", State.CONFIRMED)
    transferred = replace(conv_in(State.TRANSFERRED), outcome=Outcome.TRANSFERRED)
    d = say(transferred, "allô ?", voice_limits, practice)
    assert d.directive == "transfer" and d.reply in replies.TRANSFER and d.conversation.state is State.TRANSFERRED


def test_anti_loop_offers_the_menu_first_then_a_human(voice_limits: Limits, practice: Practice) -> None:
    conv = conv_in(State.QUALIF_NAME, turns=voice_limits.max_turns_anti_loop)
    d = say(conv, "Jean Dupont", voice_limits, practice)
    assert AntiLoopTriggered(voice_limits.max_turns_anti_loop + 1, voice_limits.max_turns_anti_loop,
                             State.QUALIF_NAME) in d.events
    assert (d.conversation.state, d.reply) == (State.INTENT_ROUTER, replies.MENU)
    assert d.conversation.context.failed(Retry.ANTI_LOOP) == 1
    # The menu grants more turns; past them the guard fires again and hands over.
    again = replace(d.conversation, state=State.QUALIF_NAME, turn_count=d.conversation.turn_count + 10)
    d = say(again, "Jean Dupont", voice_limits, practice)
    assert d.conversation.state is State.TRANSFERRED
    assert Transferred(TransferReason.ANTI_LOOP, State.QUALIF_NAME, "any") in d.events


def test_anti_loop_in_the_menu_hands_over_at_once(voice_limits: Limits, practice: Practice) -> None:
    d = say(conv_in(State.INTENT_ROUTER, turns=voice_limits.max_turns_anti_loop), "1", voice_limits, practice)
    assert d.conversation.state is State.TRANSFERRED


def test_a_filler_at_the_opening_is_helped(voice_limits: Limits, practice: Practice) -> None:
    d = say(conv_in(State.START, turns=0), "euh", voice_limits, practice)
    assert FillerDetected(State.START) in d.events and d.reply.endswith(replies.START_HELP)


def test_a_filler_is_never_counted_as_a_failure(voice_limits: Limits, practice: Practice) -> None:
    d = say(conv_in(State.QUALIF_NAME), "euh", voice_limits, practice)
    assert d.reply == replies.FILLER[Field.NAME]
    assert not any(isinstance(e, RecoveryStepped | NotUnderstood) for e in d.events)
    assert d.conversation.context.fails == {}


def test_a_filler_where_no_field_is_asked_repeats_the_question(voice_limits: Limits, practice: Practice) -> None:
    d = say(conv_in(State.QUALIF_PREF), "euh", voice_limits, practice)
    assert d.reply == f"{replies.FILLER_DEFAULT} {replies.RESUME[State.QUALIF_PREF.value]}"


def test_asking_for_a_human_transfers_from_any_state(voice_limits: Limits, practice: Practice) -> None:
    d = say(conv_in(State.QUALIF_PREF), "je veux parler à quelqu'un", voice_limits, practice)
    assert IntentOverridden(State.QUALIF_PREF, "human", State.TRANSFERRED) in d.events
    assert Transferred(TransferReason.CALLER_ASKED, State.QUALIF_PREF, "any") in d.events
    assert d.directive == "transfer"


def test_cancelling_at_the_opening_is_no_override(voice_limits: Limits, practice: Practice) -> None:
    d = say(conv_in(State.START, turns=0), "je voudrais annuler mon rendez-vous", voice_limits, practice)
    assert not any(isinstance(e, IntentOverridden) for e in d.events)
    assert d.conversation.context.intent is Intent.CANCEL


def test_a_practical_question_is_answered_then_the_question_resumes(voice_limits: Limits, practice: Practice) -> None:
    d = say(conv_in(State.QUALIF_PREF), "c'est où ?", voice_limits, practice)
    assert FaqAnswered("address", State.QUALIF_PREF) in d.events
    assert IntentOverridden(State.QUALIF_PREF, "faq", State.QUALIF_PREF) in d.events
    assert d.reply == f"{practice.faq['address']} {replies.RESUME[State.QUALIF_PREF.value]}"
    assert d.conversation.state is State.QUALIF_PREF


def test_an_opening_not_understood_twice_offers_the_menu(voice_limits: Limits, practice: Practice) -> None:
    first = say(conv_in(State.START, turns=0), GIBBERISH, voice_limits, practice)
    assert first.reply.endswith(replies.START_HELP) and first.conversation.context.failed(Retry.INTENT) == 1
    second = say(first.conversation, GIBBERISH, voice_limits, practice)
    assert (second.conversation.state, second.reply) == (State.INTENT_ROUTER, replies.MENU)


def test_the_menu_not_understood_twice_hands_over(voice_limits: Limits, practice: Practice) -> None:
    first = say(conv_in(State.INTENT_ROUTER), GIBBERISH, voice_limits, practice)
    assert first.reply == replies.MENU_SHORT and first.conversation.state is State.INTENT_ROUTER
    second = say(first.conversation, GIBBERISH, voice_limits, practice)
    assert Transferred(TransferReason.RECOVERY_LIMIT, State.INTENT_ROUTER, "any") in second.events


def test_a_preference_not_understood_is_asked_once_more_then_any_slot_will_do(
    voice_limits: Limits, practice: Practice,
) -> None:
    known = Context(first_name="Jean", last_name="Dupont")
    first = say(conv_in(State.QUALIF_PREF, context=known), GIBBERISH, voice_limits, practice)
    assert first.reply == replies.ASK_PREF_AGAIN
    second = say(first.conversation, GIBBERISH, voice_limits, practice)
    assert second.conversation.state is State.WAIT_CONFIRM and second.conversation.context.proposed
    assert second.conversation.context.failed(Retry.PREFERENCE) == 0


def test_a_name_not_understood_up_to_its_limit_hands_over(voice_limits: Limits, practice: Practice) -> None:
    limit = voice_limits.recovery_limits[Field.NAME]
    d = say(conv_in(State.QUALIF_NAME), NO_NAME, voice_limits, practice)
    for attempt in range(1, limit):
        assert RecoveryStepped(Field.NAME, attempt) in d.events
        assert d.conversation.context.failed(Retry.NAME) == attempt
        d = say(d.conversation, NO_NAME, voice_limits, practice)
    assert RecoveryLimitReached(Field.NAME, limit, voice_limits.recovery_fallback) in d.events
    assert d.conversation.state is voice_limits.recovery_fallback
    assert d.conversation.context.failed(Retry.NAME) == 0


def test_counters_and_intents_are_stored_by_value_and_old_rows_load() -> None:
    ctx = Context(fails={Retry.NAME: 1, Retry.ANTI_LOOP: 1}, intent=Intent.MODIFY)
    stored = json.loads(context_to_json(ctx))
    assert stored["fails"] == {"name": 1, "anti_loop": 1} and stored["intent"] == "modify"
    assert context_from_json(context_to_json(ctx)) == ctx
    old = json.dumps({"fails": {"intent": 1, "which": 1, "a_retired_counter": 2}, "intent": "book"})
    loaded = context_from_json(old)
    assert loaded.fails == {Retry.INTENT: 1, Retry.WHICH: 1}
    assert loaded.intent is Intent.BOOK
    assert context_from_json(json.dumps({"intent": "something-else"})).intent is None


def test_every_miss_names_a_known_field() -> None:
    """The counters the recovery ladder uses are the fields it reports."""
    assert {f.value for f in Field} <= {r.value for r in Retry}
    assert {f.value for f in Field} <= {m.value for m in MissField}
