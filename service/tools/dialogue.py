"""What the assistant is asking, read from its reply: how synthetic callers follow the dialogue.

Through the Vapi interface a caller hears only the reply, never the engine's state, so the
stage is recognised from the sentences of :mod:`service.engine.replies` (the same source the
engine speaks from, so a reworded sentence cannot silently break the tools). On the text API
the state is given and maps to a stage directly.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from enum import StrEnum

from service.engine import replies as r
from service.engine.states import Field, State


class Stage(StrEnum):
    """What the caller is expected to say next (or that the call is over)."""

    START = "start"
    NAME = "name"
    PREFERENCE = "preference"
    SLOTS = "slots"
    PHONE = "phone"
    MENU = "menu"
    IDENTIFY = "identify"
    CANCEL_CONFIRM = "cancel_confirm"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"
    UNKNOWN = "unknown"


STATE_STAGES: Mapping[State, Stage] = {
    State.START: Stage.START,
    State.QUALIF_NAME: Stage.NAME,
    State.QUALIF_PREF: Stage.PREFERENCE,
    State.WAIT_CONFIRM: Stage.SLOTS,
    State.QUALIF_PHONE: Stage.PHONE,
    State.CONFIRMED: Stage.CONFIRMED,
    State.CANCEL_IDENTIFY: Stage.IDENTIFY,
    State.MODIFY_IDENTIFY: Stage.IDENTIFY,
    State.CANCEL_CONFIRM: Stage.CANCEL_CONFIRM,
    State.MODIFY_CONFIRM: Stage.CANCEL_CONFIRM,
    State.CANCELLED: Stage.CANCELLED,
    State.TRANSFERRED: Stage.TRANSFERRED,
    State.INTENT_ROUTER: Stage.MENU,
}

MIN_MARKER = 10
_FORMATTER = string.Formatter()


def marker(sentence: str) -> str:
    """The literal text that identifies a sentence template: its opening text, or its longest
    literal piece when it opens with a placeholder or a short word ("Merci{who}. …")."""
    pieces = [literal for literal, _, _, _ in _FORMATTER.parse(sentence) if literal]
    if not pieces:
        return sentence
    return pieces[0] if len(pieces[0]) >= MIN_MARKER else max(pieces, key=len)


def _markers(*sentences: str | Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for item in sentences:
        for sentence in [item] if isinstance(item, str) else item:
            out.append(marker(sentence))
    return tuple(out)


# "Vous avez deux rendez-vous : …" opens like "Vous avez rendez-vous …" (a cancel question):
# what tells them apart is the colon after the count.
WHICH_BOOKING_MARKER = "rendez-vous : "

# Terminal sentences first: a terminal reply may also contain a question's words.
TERMINAL_MARKERS: tuple[tuple[Stage, tuple[str, ...]], ...] = (
    (Stage.CONFIRMED, _markers(r.CONFIRMED, r.CLOSED_CONFIRMED)),
    (Stage.CANCELLED, _markers(r.CANCELLED, r.CLOSED_CANCELLED)),
    (Stage.TRANSFERRED, _markers(
        r.TRANSFER, r.TRANSFER_AFTER_FAILURES, r.TRANSFER_NO_SLOT, r.TRANSFER_ERROR, r.SECURE_TRANSFER,
    )),
)
QUESTION_MARKERS: tuple[tuple[Stage, tuple[str, ...]], ...] = (
    (Stage.NAME, _markers(
        r.ASK_NAME, r.CLARIFY[Field.NAME], r.FILLER[Field.NAME], r.RESUME["QUALIF_NAME"], r.ASK_NAME_AGAIN,
        r.NAME_NEEDED,
        r.ASK_PATIENT_NAME, r.ASK_LAST_NAME, r.ASK_PATIENT_LAST_NAME, r.REASK_ACK[Field.NAME], r.REASK_ACK_PATIENT,
    )),
    (Stage.PREFERENCE, _markers(r.ASK_PREF, r.ASK_PREF_AGAIN, r.MODIFY_ASK_PREF, r.RESUME["QUALIF_PREF"])),
    (Stage.SLOTS, _markers(
        r.SLOTS_QUESTION, r.SLOTS_QUESTION_TEXT, r.ASK_WHICH_SLOT, r.CLARIFY[Field.SLOT_CHOICE],
        r.FILLER[Field.SLOT_CHOICE], r.RESUME_SLOTS, r.CONFIRM_RETRY, r.REPEAT_SLOTS, r.REASK_ACK[Field.SLOT_CHOICE],
    )),
    (Stage.PHONE, _markers(
        r.ASK_PHONE, r.CLARIFY[Field.PHONE], r.FILLER[Field.PHONE], r.RESUME["QUALIF_PHONE"], r.REASK_ACK[Field.PHONE],
    )),
    (Stage.MENU, _markers(r.MENU, r.MENU_SHORT, r.MENU_QUESTION, r.REASK_ACK_MENU)),
    (Stage.IDENTIFY, _markers(
        r.IDENTIFY_OTHER_NUMBER, r.IDENTIFY_MISSING, WHICH_BOOKING_MARKER, r.WHICH_BOOKING_AGAIN,
        r.RESUME["CANCEL_IDENTIFY"], r.REASK_ACK_WHICH_BOOKING, "Lequel souhaitez-vous déplacer ?",
    )),
    (Stage.CANCEL_CONFIRM, _markers(
        r.CANCEL_CONFIRM, r.MODIFY_CONFIRM, r.YES_NO_AGAIN, r.RESUME["CANCEL_CONFIRM"],
        r.RESUME["MODIFY_CONFIRM"],
    )),
    (Stage.START, _markers(r.START_HELP, r.START_NO, r.RESUME["START"])),
)
# The most compact voice wording lists the slots with no question ("mar 3, 14h, … ?").
_SPOKEN_TIME = re.compile(r"\b\d{1,2}h(?:\d{2})?\b|\bmidi\b")


def infer_stage(reply: str) -> Stage:
    """The stage a reply leaves the caller in: terminal sentences win, otherwise the question
    asked last in the reply (a FAQ answer is followed by the pending question)."""
    for stage, markers in TERMINAL_MARKERS:
        if any(m in reply for m in markers):
            return stage
    best, where = Stage.UNKNOWN, -1
    for stage, markers in QUESTION_MARKERS:
        for m in markers:
            at = reply.rfind(m)
            if at > where:
                best, where = stage, at
    if best is Stage.UNKNOWN and reply.rstrip().endswith("?") and len(_SPOKEN_TIME.findall(reply)) >= 2:
        return Stage.SLOTS
    return best


def stage_of_state(state: str | None) -> Stage | None:
    """The stage of an engine state name, or None when unknown."""
    try:
        return STATE_STAGES[State(state)] if state else None
    except ValueError:
        return None


_BOOKED = re.compile(re.escape(marker(r.CONFIRMED)) + r"(.+?), (?:au nom d|pour )")
_HELD = re.compile(re.escape(marker(r.CANCEL_CONFIRM)) + r"(.+?)[.,]")


def booked_label(reply: str) -> str | None:
    """The slot read back in a confirmation ("mardi 3 mars à 11h"), if the reply is one."""
    found = _BOOKED.search(reply)
    return found.group(1).strip() if found else None


def held_label(reply: str) -> str | None:
    """The appointment a cancel/modify question names ("Vous avez rendez-vous mardi 3 mars à 11h.")."""
    found = _HELD.search(reply)
    return found.group(1).strip() if found else None
