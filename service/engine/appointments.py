"""Cancelling and moving an appointment, and who may do it.

Appointments are found **only** by the caller's verified number: the caller id the telephony
reports (``Conversation.caller_phone``), never a number dictated during the call, never a
name. A caller whose number is withheld, or who holds no appointment under it, hears no
appointment detail and is transferred to the practice. A practice may opt in
(``[security] cancel_from_other_number``) to cancellations from another number when the
caller states the patient's full name and the appointment's day and time, matched exactly
before anything is read out.

Among the verified number's appointments, what the caller says ("celui de mardi", "le
rendez-vous du 8", "celui de ma fille", "le deuxième") picks one; when several match, the
assistant lists them and asks which. A move books the new slot and frees the old one in the
same transaction (``Book(replaces=…)``), so it never leaves two appointments.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta

from service.engine import booking_flow, knowledge, labels, replies
from service.engine.events import BookingCancelled
from service.engine.frozen import replace
from service.engine.model import (
    BookingAt,
    BookingRef,
    BookingsFound,
    CancelBooking,
    CancelDone,
    FindBookingAt,
    FindBookings,
    Lookup,
)
from service.engine.nlu import SlotRef
from service.engine.nlu.extract import Extraction
from service.engine.states import Field, Intent, MissField, Retry, State, TransferReason
from service.engine.turn import Turn

S = State
CANCEL_STATES = frozenset({S.CANCEL_IDENTIFY, S.CANCEL_CONFIRM})
LISTED_MAX = 3


# --------------------------------------------------------------------------- matching
def _fold(text: str) -> list[str]:
    """Name words without case, accents, hyphens or elided particles ("d'Inès" → "ines")."""
    text = unicodedata.normalize("NFD", text.casefold().replace("’", "'"))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return [w for w in text.replace("-", " ").replace("'", " ").split() if len(w) > 1]


def same_name(booked: str, said: str) -> bool:
    """The name booked and the name said are the same (case, accents and hyphens aside)."""
    return bool(_fold(said)) and _fold(booked) == _fold(said)


def _named(booked: str, said: str) -> bool:
    """A word said is in the name booked ("Inès", "celui d'Inès" designate "Inès Brossard"):
    enough to choose among the verified number's own appointments, each then confirmed."""
    words = _fold(booked)
    return any(len(w) >= 3 and w in words for w in _fold(said))


def matches(t: Turn, booking: BookingRef, hint: Lookup) -> bool:
    """True when ``booking`` agrees with everything the caller said of it."""
    local = t.local(booking.slot.start)
    if hint.day is not None and local.date() != hint.day:
        return False
    if hint.weekday is not None and local.weekday() != hint.weekday:
        return False
    if hint.day_of_month is not None and local.day != hint.day_of_month:
        return False
    if hint.at is not None and (local.hour, local.minute) != (hint.at.hour, hint.at.minute):
        return False
    if hint.patient and not _named(booking.name, hint.patient):
        return False
    caller = t.ctx.full_name
    # "celui de ma fille": not the one in the caller's own name, when that name is known.
    return not (hint.relation and caller and same_name(booking.name, caller))


def lookup_of(x: Extraction) -> Lookup:
    """What the turn says of an existing appointment."""
    hint = Lookup()
    if x.target is not None:
        target = x.target
        hint = Lookup(
            day=target.day, weekday=target.weekday, day_of_month=target.day_of_month, at=target.at,
            relation=target.relation, patient=target.patient.full if target.patient else None,
        )
    person = x.patient or x.name
    if person is not None and hint.patient is None:
        hint = replace(hint, patient=person.full)
    return hint


def merge_lookup(old: Lookup | None, new: Lookup) -> Lookup:
    """Later details replace earlier ones of the same kind; a full name is not replaced by a
    single word ("Inès Brossard", then "jeudi 12 à 15h" heard as a name too)."""
    if old is None:
        return new
    patient = new.patient or old.patient
    if old.patient and new.patient and len(_fold(old.patient)) >= 2 > len(_fold(new.patient)):
        patient = old.patient
    return Lookup(
        day=new.day or (old.day if new.weekday is None and new.day_of_month is None else None),
        weekday=new.weekday if new.weekday is not None else (old.weekday if new.day is None else None),
        day_of_month=new.day_of_month or (old.day_of_month if new.day is None else None),
        at=new.at or old.at,
        relation=new.relation or old.relation,
        patient=patient,
    )


def candidates(t: Turn) -> tuple[BookingRef, ...]:
    """The verified number's appointments that agree with what the caller said (all when
    nothing was said)."""
    hint = t.ctx.lookup or Lookup()
    return tuple(b for b in t.ctx.found if matches(t, b, hint))


def refs(t: Turn) -> tuple[SlotRef, ...]:
    """The appointments being discussed, for the understanding layer ("le deuxième", "celui
    de mardi"): the listed ones while asking which, all of them once one is designated."""
    listed = t.ctx.found if t.ctx.target is not None else (candidates(t) or t.ctx.found)
    moments = [t.local(b.slot.start) for b in listed]
    return tuple(SlotRef(m, labels.voice_label(m)) for m in moments)


# --------------------------------------------------------------------------- saying them
def _several_patients(t: Turn) -> bool:
    return len({tuple(_fold(b.name)) for b in t.ctx.found}) > 1


def _label(t: Turn, booking: BookingRef, *, full: bool) -> str:
    moment = t.local(booking.slot.start)
    text = labels.full_label(moment) if full else labels.voice_label(moment)
    return f"{text}, pour {booking.name}" if _several_patients(t) else text


def _ask_which(t: Turn, listed: tuple[BookingRef, ...], *, again: bool = False, found: bool = False) -> None:
    """Which one of ``listed``; ``found`` when they were just looked up by the calling number
    (a move says so)."""
    spoken = labels.enumerate_fr([_label(t, b, full=False) for b in listed[:LISTED_MAX]]).replace(" ou ", " et ")
    if again:
        t.say(replies.WHICH_BOOKING_AGAIN.format(labels=spoken))
        return
    count = replies.COUNTS.get(len(listed), "plusieurs")
    template = replies.WHICH_BOOKING_FOUND if found and t.state is S.MODIFY_IDENTIFY else replies.WHICH_BOOKING
    t.say(template.format(count=count, labels=spoken))


# --------------------------------------------------------------------------- entering
def enter(t: Turn, to: State, x: Extraction) -> None:
    """Start cancelling (``CANCEL_IDENTIFY``) or moving (``MODIFY_IDENTIFY``): look up the
    appointments of the verified number, or follow the practice's rule for everyone else."""
    moving = to is S.MODIFY_IDENTIFY
    new_pref = x.preference if moving and knowledge.meaningful(x.preference) else None
    t.set_ctx(replace(
        t.ctx, found=(), target=None, modifying=None, proposed=(), chosen=None, lookup=lookup_of(x),
        intent=Intent.MODIFY if moving else Intent.CANCEL, preference=new_pref,
    ))
    t.go(to)
    if t.caller_phone:
        t.action = FindBookings(t.caller_phone)
    else:
        _not_verified(t, None)


def _not_verified(t: Turn, x: Extraction | None) -> None:
    """No appointment under a verified number: the opt-in identification, else the practice."""
    if t.practice.cancel_from_other_number and t.state in CANCEL_STATES:
        t.go(S.CANCEL_IDENTIFY)
        _identify_other(t, x, first=True)
    else:
        t.transfer(replies.SECURE_TRANSFER, TransferReason.NOT_VERIFIED)


def _date_of(t: Turn, hint: Lookup) -> date | None:
    """The one date the caller's words give (a weekday or a day of the month: the next one)."""
    if hint.day is not None:
        return hint.day
    today = t.local(t.now).date()
    for offset in range(t.practice.horizon_days + 1):
        day = today + timedelta(days=offset)
        if hint.weekday is not None and day.weekday() == hint.weekday:
            return day
        if hint.day_of_month is not None and day.day == hint.day_of_month:
            return day
    return None


def _identify_other(t: Turn, x: Extraction | None, *, first: bool = False) -> None:
    """Opt-in cancellation from another number: gather the patient's full name and the day and
    time, then look up that exact slot. Nothing is read out before the match."""
    before = t.ctx.lookup
    if x is not None:
        t.set_ctx(replace(t.ctx, lookup=merge_lookup(t.ctx.lookup, lookup_of(x))))
    hint = t.ctx.lookup or Lookup()
    day = _date_of(t, hint)
    full_name = hint.patient is not None and len(_fold(hint.patient)) >= 2
    if full_name and day is not None and hint.at is not None:
        t.action = FindBookingAt(datetime.combine(day, hint.at, t.practice.timezone))
        return
    missing = [
        part for part, known in (
            (replies.MISSING_NAME, full_name), (replies.MISSING_DAY, day is not None),
            (replies.MISSING_TIME, hint.at is not None),
        ) if not known
    ]
    if first:
        t.say(replies.IDENTIFY_OTHER_NUMBER)
        return
    text = replies.IDENTIFY_MISSING.format(missing=labels.enumerate_fr(missing).replace(" ou ", " et "))
    if t.ctx.lookup != before:
        t.say(text)
    else:
        t.fail(Field.NAME, text)


# --------------------------------------------------------------------------- designating
def designate(t: Turn, booking: BookingRef, *, prefix: str | None = None, found: bool = False) -> None:
    """The caller means ``booking``: confirm the cancellation, or move it (straight to new
    slots when the new preference is known). ``found``: it was just looked up by the calling
    number, and a move says so ("J'ai trouvé votre rendez-vous du …, au numéro qui appelle")."""
    t.set_ctx(replace(t.ctx.without_fail(Retry.SLOT_CHOICE), target=booking))
    if prefix:
        t.say(prefix)
    if t.state in CANCEL_STATES:
        t.say(replies.CANCEL_CONFIRM.format(slot=_label(t, booking, full=True)))
        t.go(S.CANCEL_CONFIRM)
        return
    if knowledge.meaningful(t.ctx.preference):
        _move(t, booking, found=found)
        return
    template = replies.MODIFY_FOUND if found else replies.MODIFY_CONFIRM
    t.say(template.format(slot=_label(t, booking, full=True)))
    t.go(S.MODIFY_CONFIRM)


def _move(t: Turn, booking: BookingRef, *, found: bool = False) -> None:
    t.set_ctx(replace(t.ctx, modifying=booking))
    pref = t.ctx.preference
    assert pref is not None
    template = replies.MOVE_FOUND_INTRO if found else replies.MOVE_INTRO
    lead = template.format(old=_label(t, booking, full=found))
    t.propose_or_transfer(pref, replies.SLOTS_INTRO, lead=lead)


def _select(t: Turn) -> None:
    """Pick the appointment the caller means among the verified number's (just looked up),
    or ask which."""
    listed = candidates(t)
    if len(listed) == 1:
        designate(t, listed[0], found=True)
    elif listed:
        _ask_which(t, listed, found=True)
    elif len(t.ctx.found) == 1:
        designate(t, t.ctx.found[0], prefix=replies.NOT_THAT_ONE, found=True)
    else:
        t.set_ctx(replace(t.ctx, lookup=None))
        t.say(replies.NOT_THAT_ONE)
        _ask_which(t, t.ctx.found, found=True)


def _designated(t: Turn, x: Extraction, pool: tuple[BookingRef, ...]) -> BookingRef | tuple[BookingRef, ...] | None:
    """What the turn points at in ``pool``: one appointment, several, or None (nothing said)."""
    if isinstance(x.choice, int) and 0 <= x.choice < len(pool):
        return pool[x.choice]
    hint = lookup_of(x)
    if hint.empty:
        return None
    narrowed = tuple(b for b in pool if matches(t, b, hint))
    return narrowed[0] if len(narrowed) == 1 else narrowed


# --------------------------------------------------------------------------- handlers
def identify(t: Turn, x: Extraction, interrupted: bool) -> None:
    """Which appointment (several under the verified number), or the opt-in identification."""
    if not t.ctx.found:
        if t.practice.cancel_from_other_number and t.state is S.CANCEL_IDENTIFY:
            _identify_other(t, x)
        else:
            t.transfer(replies.SECURE_TRANSFER, TransferReason.NOT_VERIFIED)
        return
    listed = candidates(t) or t.ctx.found
    picked = _designated(t, x, listed)
    if isinstance(picked, BookingRef):
        designate(t, picked)
    elif picked:
        t.set_ctx(replace(t.ctx, lookup=merge_lookup(t.ctx.lookup, lookup_of(x))))
        _ask_which(t, picked)
    else:
        spoken = labels.enumerate_fr([_label(t, b, full=False) for b in listed[:LISTED_MAX]])
        ack = replies.REASK_ACK_WHICH_BOOKING.format(labels=spoken)
        if picked is None and booking_flow.reask_acknowledged(
            t, x, Retry.ACK_SLOT_CHOICE, t.ctx.failed(Retry.SLOT_CHOICE), ack,
        ):
            return
        text = replies.WHICH_BOOKING_AGAIN.format(labels=spoken)
        t.fail(Field.SLOT_CHOICE, (replies.NOT_THAT_ONE + " " + text) if picked == () else text)


def _retarget(t: Turn, x: Extraction) -> bool:
    """"Non, celui de jeudi": another of the caller's appointments; True when handled. A day
    said with a new wish ("oui, plutôt vendredi") is where to move it, not which one."""
    if x.target is None and x.preference is not None:
        return False
    picked = _designated(t, x, t.ctx.found)
    if isinstance(picked, BookingRef) and picked != t.ctx.target:
        designate(t, picked)
        return True
    return False


def _confirming(t: Turn, x: Extraction) -> BookingRef | None:
    """The appointment a yes/no is about, or None once the turn is handled (none found: the
    menu; another one designated instead: it is read back)."""
    target = t.ctx.target or (t.ctx.found[0] if t.ctx.found else None)
    if target is None:
        t.menu()
        return None
    if _retarget(t, x):
        return None
    return target


def _cancel(t: Turn, target: BookingRef) -> None:
    t.set_ctx(replace(t.ctx, target=target))
    t.action = CancelBooking(target.booking_id)


def cancel_confirm(t: Turn, x: Extraction, interrupted: bool) -> None:
    """"Je l'annule ?": yes cancels, no keeps it, another one is designated instead."""
    target = _confirming(t, x)
    if target is None:
        return
    if x.yes_no == "yes":
        _cancel(t, target)
    else:
        _kept_or_ask_again(t, x)


def _kept_or_ask_again(t: Turn, x: Extraction) -> None:
    """No keeps the appointment and goes back to the menu; neither yes nor no asks again."""
    if x.yes_no == "no":
        t.say(replies.CANCEL_KEPT)
        t.menu()
    else:
        t.miss(MissField.YES_NO)
        t.say(replies.YES_NO_AGAIN)


def modify_confirm(t: Turn, x: Extraction, interrupted: bool) -> None:
    """"Souhaitez-vous le déplacer ?": yes (maybe with the new preference) moves it."""
    target = _confirming(t, x)
    if target is None:
        return
    if x.intent is Intent.CANCEL:
        _cancel(t, target)
    elif x.yes_no == "yes" or x.intent is Intent.MODIFY or knowledge.meaningful(x.preference):
        if x.preference is not None:
            t.set_ctx(replace(t.ctx, preference=knowledge.merge_preference(t.ctx.preference, x.preference)))
        if knowledge.meaningful(t.ctx.preference):
            _move(t, target)
            return
        t.set_ctx(replace(t.ctx, modifying=target))
        t.say(replies.MODIFY_ASK_PREF)
        t.go(S.QUALIF_PREF)
    else:
        _kept_or_ask_again(t, x)


# --------------------------------------------------------------------------- store answers
def bookings_found(t: Turn, found: BookingsFound) -> None:
    """The verified number's appointments: designate one, ask which, or none → the practice."""
    if not found.bookings:
        _not_verified(t, None)
        return
    t.set_ctx(replace(t.ctx, found=found.bookings))
    _select(t)


def booking_at(t: Turn, found: BookingAt) -> None:
    """Opt-in identification: the slot's booking must carry exactly the name said, or nothing
    is read out and the practice takes over."""
    booking, hint = found.booking, t.ctx.lookup or Lookup()
    if booking is None or hint.patient is None or not same_name(booking.name, hint.patient):
        t.transfer(replies.SECURE_TRANSFER, TransferReason.NOT_VERIFIED)
        return
    t.set_ctx(replace(t.ctx, found=(booking,)))
    designate(t, booking)


def cancel_done(t: Turn, done: CancelDone) -> None:
    """The cancellation went through (or the practice takes over)."""
    target = t.ctx.target or (t.ctx.found[0] if t.ctx.found else None)
    if not done.ok or target is None:
        t.transfer(replies.TRANSFER_ERROR, TransferReason.BOOKING_ERROR)
        return
    t.emit(BookingCancelled(target.slot.start))
    t.say(replies.CANCELLED.format(slot=labels.full_label(t.local(target.slot.start))))
    t.go(S.CANCELLED)
    t.directive = "end"

