"""When the caller would like to come, in the first wave's four fields (period, day, after,
before): a view of :mod:`when`, which reads every constraint of the turn.

Kept for the callers that predate the constraint form (the ``preference`` task of ``rdv
understand``, the engine's first-wave paths). The reference date is an argument; nothing
here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal

from service.engine import model
from service.engine.nlu.tokens import tokenize
from service.engine.nlu.when import read_when

Period = Literal["morning", "afternoon", "any"]


@dataclass(frozen=True, slots=True)
class Preference:
    """Period (morning / afternoon / any), optional day and time bounds."""

    period: Period
    day: date | None
    after: time | None
    before: time | None


def constraints(text: str, now: datetime) -> model.Preference | None:
    """Every constraint the caller gave on when to come (``now`` tz-aware); never raises."""
    if not isinstance(text, str) or not isinstance(now, datetime):
        return None
    try:
        found = read_when(tokenize(text), now.date())
    except (ValueError, OverflowError):
        return None
    return None if found is None else found.preference


def preference(text: str, now: datetime) -> Preference | None:
    """When the caller would like to come (``now`` is the reference, tz-aware); never raises."""
    found = constraints(text, now)
    if found is None:
        return None
    return Preference(found.period, found.day, found.after, found.before)
