"""Taking an appointment: learn what each turn gives, ask only for what is still missing.

Every handler first merges the turn's extraction into the context (see
:mod:`service.engine.knowledge`), then :func:`advance` asks the next missing piece — the
patient's name when the appointment is for someone else, else the caller's name (a last name
is needed: "Ghislaine comment ?"), then the preference — or proposes slots when everything
is known, whatever state the conversation is in.
"""

from __future__ import annotations

from collections.abc import Callable

from service.engine import knowledge, nlu, replies
from service.engine.frozen import replace
from service.engine.model import Preference
from service.engine.nlu.extract import Extraction
from service.engine.states import Field, Intent, MissField, MissReason, Retry, State, TransferReason
from service.engine.turn import Turn

S = State
Handler = Callable[[Turn, Extraction, bool], None]
PREF_RETRIES = 1
MENU_RETRIES = 2


def names_missing(t: Turn) -> bool:
    """True when the name the appointment needs is not complete yet."""
    ctx = t.ctx
    if ctx.modifying is not None:
        return False
    if ctx.for_someone_else:
        return not ctx.patient_last
    return not ctx.last_name


def name_question(t: Turn) -> str:
    """The question for the name still missing: the patient's or the caller's, whole or its
    last part."""
    ctx = t.ctx
    if ctx.for_someone_else:
        if ctx.patient_first:
            return replies.pick(replies.ASK_PATIENT_LAST_NAME, t.nth()).format(first=ctx.patient_first)
        return replies.ASK_PATIENT_NAME.format(whom=replies.relation_words(ctx.relation))
    if ctx.first_name:
        return replies.pick(replies.ASK_LAST_NAME, t.nth()).format(first=ctx.first_name)
    return replies.pick(replies.ASK_NAME, t.nth())


def ask_name(t: Turn) -> None:
    """Ask the name still missing."""
    t.say(name_question(t))


def advance(t: Turn) -> None:
    """Ask for what is still missing, or propose slots when everything is known."""
    ctx = t.ctx
    if names_missing(t):
        ask_name(t)
        t.go(S.QUALIF_NAME)
        return
    if ctx.preference is None:
        who = ""
        if not ctx.for_someone_else and (ctx.first_name or ctx.last_name):
            who = f" {ctx.first_name or ctx.last_name}"
        t.say(replies.pick(replies.ASK_PREF, t.nth()).format(who=who))
        t.go(S.QUALIF_PREF)
        return
    t.propose_or_transfer(ctx.preference, replies.SLOTS_INTRO)


def _learn(t: Turn, x: Extraction, *, name_asked: bool = False, keep_preference: bool = True) -> bool:
    """Merge ``x`` into the context; True when it taught something new."""
    before = t.ctx
    after = knowledge.learn(before, x, name_asked=name_asked, keep_preference=keep_preference)
    if after is before:
        return False
    t.set_ctx(after)
    return after != before


def bare_yes(x: Extraction) -> bool:
    """"Oui", "ben oui", "ouais": a yes and nothing else (no name, number, choice, wish, request)."""
    return (
        x.yes_no == "yes" and x.intent is None and x.name is None and x.name_issue is None
        and x.patient is None and x.relation is None and x.phone is None and x.choice is None
        and x.target is None and not knowledge.meaningful(x.preference)
    )


def reask_acknowledged(t: Turn, x: Extraction, ack: Retry, asked_again: int, text: str) -> bool:
    """A bare "oui" to a question asked again because the last answer was not understood
    ("Pouvez-vous le redire ?" — "Oui.") is the caller getting ready to answer, not an answer
    that failed: invite the answer (``text``) without counting a failure, once per re-ask
    (``asked_again`` re-asks of that question so far; ``ack`` counts the free ones). True when
    the turn is handled."""
    if asked_again <= 0 or not bare_yes(x) or t.ctx.failed(ack) >= asked_again:
        return False
    t.set_ctx(t.ctx.with_fail(ack))
    t.say(text)
    return True


def _name_ack(t: Turn) -> str:
    """The invitation to say the name still missing, after a bare "oui"."""
    ctx = t.ctx
    if ctx.for_someone_else:
        whom = ctx.patient_first or replies.relation_words(ctx.relation)
        return replies.REASK_ACK_PATIENT.format(whom=whom)
    return replies.REASK_ACK[Field.NAME]


# --------------------------------------------------------------------------- handlers
def start(t: Turn, x: Extraction, interrupted: bool) -> None:
    """The opening: a booking request (with whatever else it gives), a no, or not understood."""
    _learn(t, x)
    ctx = t.ctx
    wants = (
        x.intent is Intent.BOOK or x.yes_no == "yes" or ctx.intent is Intent.BOOK or x.relation is not None
        or x.patient is not None or knowledge.meaningful(x.preference)
    )
    if wants:
        t.set_ctx(replace(ctx, intent=Intent.BOOK))
        advance(t)
    elif x.yes_no == "no":
        t.say(replies.START_NO)
    else:
        if t.counted(Retry.INTENT, MENU_RETRIES):
            t.miss(MissField.INTENT, fallback=S.INTENT_ROUTER)
            t.menu()
        else:
            t.miss(MissField.INTENT)
            t.say(replies.START_HELP)


def qualif_name(t: Turn, x: Extraction, interrupted: bool) -> None:
    """The name question: a name (whole, or a first name to complete), a refusal, or nothing."""
    learned = _learn(t, x, name_asked=True)
    if not names_missing(t):
        t.set_ctx(t.ctx.without_fail(Retry.NAME, Retry.NAME_WHY))
        advance(t)
        return
    if learned:
        advance(t)  # something usable (a first name, a preference, the patient): not a failure
        return
    if reask_acknowledged(t, x, Retry.ACK_NAME, t.ctx.failed(Retry.NAME), _name_ack(t)):
        return
    if x.name_issue in ("refused", "question") and t.ctx.failed(Retry.NAME_WHY) == 0:
        # Said why once, without counting: the caller may simply not see why it is needed.
        t.set_ctx(t.ctx.with_fail(Retry.NAME_WHY))
        t.say(replies.NAME_WHY)
        if t.ctx.for_someone_else:
            ask_name(t)
        else:
            t.say(replies.ASK_NAME_AGAIN)
        return
    if x.name_issue in ("refused", "question"):
        t.fail(Field.NAME, replies.NAME_NEEDED, MissReason.REFUSED)
    elif x.name_issue == "first_only" and (t.ctx.first_name or t.ctx.patient_first):
        # The same first name again: its last name, please.
        t.fail(Field.NAME, name_question(t), MissReason.FIRST_NAME_ONLY)
    else:
        t.fail(Field.NAME)


def qualif_pref(t: Turn, x: Extraction, interrupted: bool) -> None:
    """The preference question; after one free re-ask, any slot will do."""
    learned = _learn(t, x)
    if x.preference is not None or (learned and names_missing(t)):
        t.set_ctx(t.ctx.without_fail(Retry.PREFERENCE))
        advance(t)
        return
    reached = t.counted(Retry.PREFERENCE, PREF_RETRIES + 1)
    t.miss(MissField.PREFERENCE)
    if not reached:
        t.say(replies.ASK_PREF_AGAIN)
        return
    t.set_ctx(replace(t.ctx.without_fail(Retry.PREFERENCE), preference=Preference()))
    advance(t)


def other_slots(t: Turn, x: Extraction) -> None:
    """The caller turned the proposed slots down: three others (with any new preference)."""
    _learn(t, x)
    pref = t.ctx.preference or Preference()
    if not t.propose(pref, replies.SLOTS_INTRO_OTHER, exclude_current=True):
        t.no_slot(pref)


def wait_confirm(t: Turn, x: Extraction, interrupted: bool) -> None:
    """Slots are on the table: a choice books, "repeat" reads them again, a rejection or a new
    preference proposes others, a new patient is noted."""
    choice = x.choice
    if isinstance(choice, int) and 0 <= choice < len(t.ctx.proposed):
        _learn(t, x, keep_preference=False)
        if names_missing(t):
            advance(t)  # "le deuxième, c'est pour mon fils": his name first
            return
        t.choose(choice, interrupted)
        return
    if choice == "repeat":
        t.say(replies.REPEAT_SLOTS.format(labels=t.spoken_slots()))
        return
    if choice == "none":
        other_slots(t, x)
        return
    if knowledge.meaningful(x.preference):
        # "plutôt l'après-midi", "ah non pas jeudi, vendredi": the new preference, new slots.
        _learn(t, x)
        assert t.ctx.preference is not None
        t.propose(t.ctx.preference, replies.SLOTS_INTRO_OTHER)
        return
    before = t.booking_name(), t.ctx.relation
    if _learn(t, x, keep_preference=False) and (t.booking_name(), t.ctx.relation) != before:
        # "pardon, je m'appelle Jean Dupuis", "en fait c'est pour mon fils Tom": noted, same slots.
        if names_missing(t):
            advance(t)
            return
        t.say(replies.NAME_NOTED.format(who=t.for_whom()))
        t.resume()
        return
    if x.yes_no == "yes" and t.ctx.failed(Retry.WHICH) == 0:
        t.miss(MissField.SLOT_CHOICE, MissReason.AMBIGUOUS)
        t.set_ctx(t.ctx.with_fail(Retry.WHICH))
        t.say(replies.ASK_WHICH_SLOT)
        return
    asked_again = sum(t.ctx.failed(k) for k in (Retry.WHICH, Retry.CONFIRM, Retry.SLOT_CHOICE))
    if reask_acknowledged(t, x, Retry.ACK_SLOT_CHOICE, asked_again, replies.REASK_ACK[Field.SLOT_CHOICE]):
        return
    if t.ctx.failed(Retry.CONFIRM) < t.limits.confirm_retry_max:
        t.miss(MissField.SLOT_CHOICE)
        t.set_ctx(t.ctx.with_fail(Retry.CONFIRM))
        t.say(replies.CONFIRM_RETRY.format(slots=replies.ASK_WHICH_SLOT))
        return
    t.fail(Field.SLOT_CHOICE)


def qualif_phone(t: Turn, x: Extraction, interrupted: bool) -> None:
    """The call-back number (asked only without a caller id)."""
    _learn(t, x, keep_preference=False)
    if x.phone is None:
        if not reask_acknowledged(t, x, Retry.ACK_PHONE, t.ctx.failed(Retry.PHONE), replies.REASK_ACK[Field.PHONE]):
            t.fail(Field.PHONE)
        return
    t.set_ctx(t.ctx.without_fail(Retry.PHONE))
    if names_missing(t):
        advance(t)
        return
    if t.ctx.chosen is None:
        t.propose_or_transfer(t.ctx.preference or Preference(), replies.SLOTS_INTRO)
        return
    t.book(t.ctx.chosen)


def intent_router(t: Turn, x: Extraction, interrupted: bool, enter_identify: Callable[[Turn, State], None]) -> None:
    """The fallback menu: 1 book, 2 cancel or move, 3 a question, 4 someone."""
    choice = nlu.menu_choice(x.text)
    if choice == "book":
        t.set_ctx(replace(t.ctx.without_fail(Retry.MENU), intent=Intent.BOOK))
        _learn(t, x)
        advance(t)
    elif choice == "cancel_or_modify":
        enter_identify(t, S.CANCEL_IDENTIFY if x.intent is Intent.CANCEL else S.MODIFY_IDENTIFY)
    elif choice == "question":
        t.say(replies.MENU_QUESTION)
    elif choice == "human":
        t.transfer(replies.pick(replies.TRANSFER, t.nth()), TransferReason.CALLER_ASKED)
    elif reask_acknowledged(t, x, Retry.ACK_MENU, t.ctx.failed(Retry.MENU), replies.REASK_ACK_MENU):
        return
    else:
        if t.counted(Retry.MENU, MENU_RETRIES):
            t.miss(MissField.MENU, fallback=S.TRANSFERRED)
            t.transfer(replies.TRANSFER_AFTER_FAILURES, TransferReason.RECOVERY_LIMIT)
        else:
            t.miss(MissField.MENU)
            t.say(replies.MENU_SHORT)
