"""Caller-id normalisation: a number Vapi or a widget gives us, as E.164, or None if withheld."""

from __future__ import annotations

import phonenumbers

from service.engine.nlu.memo import caller_memo

WITHHELD = frozenset({"", "anonymous", "unknown", "private", "restricted", "unavailable", "withheld"})


def caller_id(raw: object) -> str | None:
    """E.164 of a valid caller number; None when absent, withheld, a placeholder or invalid."""
    if not isinstance(raw, str):
        return None
    return _e164(raw)


# A conversation's number arrives again on every turn of a Vapi call (and a caller calls
# back): parsed once (phonenumbers takes about 60 µs), then read from here.
@caller_memo(maxsize=4096)
def _e164(raw: str) -> str | None:
    text = raw.strip()
    if text.lower() in WITHHELD or len(text) > 32:
        return None
    try:
        number = phonenumbers.parse(text, "FR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(e164: str | None) -> str | None:
    """"+33612345678" → "+336******78": enough to recognise, not to call."""
    if not e164:
        return e164
    if len(e164) <= 6:
        return "*" * len(e164)
    return e164[:4] + "*" * (len(e164) - 6) + e164[-2:]
