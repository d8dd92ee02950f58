"""Voice labels are speakable and the slot message stays within its budget."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from service.engine.labels import full_label, log_label, slot_message, voice_label
from service.engine.model import Slot
from service.engine.states import Channel
from tests.support import PARIS

FRIDAY = datetime(2026, 2, 6, 14, 0, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (FRIDAY, "vendredi 6 à 14h"),
        (FRIDAY.replace(hour=9, minute=30), "vendredi 6 à 9h30"),
        (FRIDAY.replace(hour=12), "vendredi 6 à midi"),
        (datetime(2026, 6, 1, 8, 30, tzinfo=PARIS), "lundi 1er à 8h30"),
    ],
)
def test_voice_label(moment: datetime, expected: str) -> None:
    """Voice labels read like speech, never like "06/02 - 14:00"."""
    assert voice_label(moment) == expected


def test_full_and_log_labels() -> None:
    """The read-back names the month; the log form is the seed's ``slot=`` text."""
    assert full_label(FRIDAY) == "vendredi 6 février à 14h"
    assert log_label(FRIDAY) == "vendredi 6 février 14h"


def _slots(n: int = 3) -> list[Slot]:
    return [Slot(FRIDAY + timedelta(hours=i), FRIDAY + timedelta(hours=i, minutes=30)) for i in range(n)]


@pytest.mark.parametrize("budget", [80, 100, 120, 160, 350])
def test_voice_message_fits_budget_and_keeps_every_slot(budget: int) -> None:
    """However small the budget, the message fits when it can and never drops a slot."""
    intro = "Très bien. J'ai trois créneaux pour vous, tous avec le docteur Martin :"
    text = slot_message(_slots(), Channel.VOICE, budget, intro, "Lequel vous convient ?", lambda d: d)
    assert len(text) <= budget
    for hour in ("14h", "15h", "16h"):
        assert hour in text


def test_text_message_lists_full_labels() -> None:
    """Text channels get numbered full labels."""
    text = slot_message(_slots(), Channel.TEXT, None, "Voici :", "Lequel ?", lambda d: d)
    assert "1. vendredi 6 février à 14h" in text
    assert "3. vendredi 6 février à 16h" in text
