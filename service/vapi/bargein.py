"""Barge-in seen in Vapi's spoken history: a slot list the caller heard only in part."""

from __future__ import annotations


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def slot_list_cut_short(slots_message: str | None, heard: str | None) -> bool:
    """True when ``heard`` ends inside ``slots_message``: the list was cut while spoken.

    Vapi's history holds only what text-to-speech actually said of an interrupted reply, so
    the last assistant message then ends with a strict prefix of the slot message.
    """
    if not slots_message or not heard:
        return False
    message, spoken = _squash(slots_message), _squash(heard)
    if message in spoken:
        return False
    anchor = message[: min(20, len(message))]
    at = spoken.rfind(anchor)
    if at < 0:
        return False
    tail = spoken[at:]
    return message.startswith(tail) and len(tail) < len(message)
