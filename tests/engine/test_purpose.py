"""What a conversation was for, from the states it visited: the conversion population."""

from __future__ import annotations

import pytest

from service.engine.states import Purpose, purpose_of
from telemetry import names as n

CASES = [
    ((), False, Purpose.UNDECLARED),
    (("START", "TRANSFERRED"), False, Purpose.UNDECLARED),
    (("START",), True, Purpose.INFORMATION),
    (("START", "QUALIF_NAME"), True, Purpose.BOOK),
    (("START", "CANCEL_IDENTIFY", "CANCEL_CONFIRM", "CANCELLED"), False, Purpose.CANCEL),
    (("START", "CANCEL_IDENTIFY", "INTENT_ROUTER", "QUALIF_NAME"), False, Purpose.BOOK),
    (("START", "MODIFY_IDENTIFY", "MODIFY_CONFIRM", "QUALIF_PREF", "WAIT_CONFIRM", "CONFIRMED"), False, Purpose.MOVE),
    (("START", "NOT_A_STATE"), False, Purpose.UNDECLARED),
]


@pytest.mark.parametrize(("states", "faq", "expected"), CASES)
def test_purpose_is_the_strongest_shown(states: tuple[str, ...], faq: bool, expected: Purpose) -> None:
    """A move beats a booking, a booking beats a cancellation, any of them beats a FAQ."""
    assert purpose_of(states, faq) is expected


def test_conversion_population_excludes_cancellations_and_information() -> None:
    """The contract's population: book, move and undeclared; never cancel or information."""
    assert set(n.CONVERSION_PURPOSES) == {"book", "move", "undeclared"}
