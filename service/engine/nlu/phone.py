"""Phone numbers as callers say or type them, as E.164 (validated by ``phonenumbers``).

"zéro six douze trente-quatre cinquante-six soixante-dix-huit", "06 12 34 56 78",
"+33 6 12 34 56 78", digits split oddly by speech-to-text. A number with its leading
zero dropped is refused (phonenumbers would accept it): ten national digits are required.
"""

from __future__ import annotations

import re

import phonenumbers

from service.engine.nlu.normalize import analyse

_DIGITS = re.compile(r"\d+")


def _digits(text: str) -> str:
    utt = analyse(text)
    joined = "".join(_DIGITS.findall(utt.digit_text))
    if "+" in utt.raw or "plus" in utt.words:
        return "+" + joined
    return joined


def phone(text: str) -> str | None:
    """E.164 of a valid French (or international, with +) number, else None."""
    if not isinstance(text, str) or not text.strip():
        return None
    digits = _digits(text)
    if digits.startswith("+"):
        candidate = digits
    elif digits.startswith("0033"):
        candidate = "+" + digits[2:]
    elif digits.startswith("33") and len(digits) == 11:
        candidate = "+" + digits
    elif len(digits) == 10 and digits.startswith("0"):
        candidate = digits
    else:
        return None
    if len(candidate.lstrip("+")) > 15:
        return None
    try:
        number = phonenumbers.parse(candidate, "FR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if number.country_code == 33 and len(str(number.national_number)) != 9:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def warm() -> None:
    """Load phonenumbers' metadata now rather than during the first caller's turn."""
    phonenumbers.is_valid_number(phonenumbers.parse("0612345678", "FR"))
