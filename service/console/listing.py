"""The conversations list: filters read from the query string, rows from the stats' facts.

A row is one conversation as :func:`service.stats.facts_from_store` sees it (outcome, the state
it stopped in, turns, the checklist's cause); filtering happens on those facts, so a list
filtered by outcome counts exactly what the overview counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from service import stats
from service.console import french
from service.console.overview import STOPPED
from service.console.periods import LABELS, MAX_DAYS_BACK, WEEK
from service.engine.states import Channel, Outcome, State
from service.phones import mask

MAX_ROWS: Final = 200
MAX_PHONE_SCAN: Final = 2000  # conversations whose caller number is read for one phone search
SEARCH = re.compile(r"[A-Za-z0-9_-]{1,128}")
PHONE_DIGITS = re.compile(r"\d{2,15}")
NATIONAL_DIGITS: Final = 9  # "0" + at least 8 digits: a whole national number, trunk prefix first
OUTCOME_CHOICES: Final = (*(o.value for o in Outcome), french.IN_PROGRESS, STOPPED)
OUTCOME_LABELS: Final = {**french.OUTCOMES, STOPPED: "abandonné ou expiré"}
STATE_CHOICES: Final = tuple(s.value for s in State)
CHANNEL_CHOICES: Final = tuple(c.value for c in Channel)


@dataclass(frozen=True, slots=True)
class Filters:
    """What the operator asked for; None means "any"."""

    period: str = WEEK
    day: date | None = None
    outcome: str | None = None
    state: str | None = None
    channel: str | None = None
    q: str | None = None
    phone: str | None = None

    @property
    def narrowed(self) -> bool:
        """True when anything but the period is set."""
        return any((self.day, self.outcome, self.state, self.channel, self.q, self.phone))


@dataclass(frozen=True, slots=True)
class Row:
    """One conversation of the list."""

    conv_id: str
    last_seen: datetime | None
    channel: str
    outcome: str
    outcome_label: str
    final_state: str
    turns: int
    cause: str
    cause_label: str
    ended_reason: str
    phone: str | None = None


def _choice(raw: str | None, allowed: Sequence[str], label: str, errors: list[str]) -> str | None:
    value = (raw or "").strip()
    if not value:
        return None
    if value not in allowed:
        errors.append(f"{label} « {value[:40]} » inconnu : filtre ignoré")
        return None
    return value


def parse_filters(params: Mapping[str, str], today: date) -> tuple[Filters, list[str]]:
    """The filters of a query string, and a French message per value that was ignored."""
    errors: list[str] = []
    period_key = params.get("period", WEEK)
    if period_key not in LABELS:
        errors.append(f"période « {period_key[:20]} » inconnue : 7 jours")
        period_key = WEEK
    day: date | None = None
    raw_day = (params.get("day") or "").strip()
    if raw_day:
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            errors.append(f"jour « {raw_day[:20]} » illisible (AAAA-MM-JJ) : filtre ignoré")
        else:
            if not today - timedelta(days=MAX_DAYS_BACK) <= day <= today:
                errors.append(f"jour {raw_day} hors des {MAX_DAYS_BACK} derniers jours : filtre ignoré")
                day = None
    q = (params.get("q") or "").strip() or None
    if q is not None and not SEARCH.fullmatch(q):
        errors.append("identifiant : 1 à 128 caractères parmi A-Z a-z 0-9 _ - : recherche ignorée")
        q = None
    phone = re.sub(r"[\s.+-]", "", params.get("phone") or "") or None
    if phone is not None and not PHONE_DIGITS.fullmatch(phone):
        errors.append("téléphone : de 2 à 15 chiffres (les derniers du numéro) : recherche ignorée")
        phone = None
    return Filters(
        period=period_key, day=day,
        outcome=_choice(params.get("outcome"), OUTCOME_CHOICES, "résultat", errors),
        state=_choice(params.get("state"), STATE_CHOICES, "état", errors),
        channel=_choice(params.get("channel"), CHANNEL_CHOICES, "canal", errors),
        q=q, phone=phone,
    ), errors


def _outcome_matches(status: str, wanted: str) -> bool:
    if wanted == STOPPED:
        return status in (Outcome.ABANDONED.value, Outcome.EXPIRED.value)
    return status == wanted


def matches(facts: stats.CallFacts, filters: Filters) -> bool:
    """True when the conversation passes every filter but the phone search."""
    if filters.outcome and not _outcome_matches(facts.status, filters.outcome):
        return False
    if filters.state and facts.final_state != filters.state:
        return False
    if filters.channel and facts.channel != filters.channel:
        return False
    return not (filters.q and filters.q.lower() not in facts.conv_id.lower())


def phone_matches(phone: str | None, digits: str) -> bool:
    """True when the caller number ends with these digits (a whole national number such as
    ``06 12 34 56 78`` is read without its trunk ``0``, as E.164 stores it)."""
    if not phone:
        return False
    stored = "".join(c for c in phone if c.isdigit())
    if len(digits) >= NATIONAL_DIGITS and digits.startswith("0"):
        digits = digits[1:]
    return stored.endswith(digits)


def newest_first(facts: Sequence[stats.CallFacts]) -> list[stats.CallFacts]:
    """Most recently seen first (then by id, for a stable order)."""
    return sorted(
        facts,
        key=lambda f: (f.last_seen_at.timestamp() if f.last_seen_at else float("-inf"), f.conv_id),
        reverse=True,
    )


def row(facts: stats.CallFacts, tz: ZoneInfo, phone: str | None = None) -> Row:
    """The list row of one conversation (``phone`` masked when given)."""
    cause = stats.cause_of(facts)
    status = facts.status
    return Row(
        conv_id=facts.conv_id,
        last_seen=facts.last_seen_at.astimezone(tz) if facts.last_seen_at else None,
        channel=french.channel(facts.channel),
        outcome=status,
        outcome_label=french.outcome(status),
        final_state=facts.final_state or "?",
        turns=facts.turns,
        cause=cause.value,
        cause_label=french.CAUSES[cause],
        ended_reason=facts.ended_reason or "",
        phone=mask(phone) if phone else None,
    )


def describe(filters: Filters) -> str:
    """The filters in words, for the page title and screen readers."""
    parts = [filters.day.isoformat() if filters.day else LABELS.get(filters.period, filters.period)]
    if filters.outcome:
        parts.append(OUTCOME_LABELS[filters.outcome])
    if filters.state:
        parts.append(f"arrêté en {filters.state}")
    if filters.channel:
        parts.append(french.channel(filters.channel))
    if filters.q:
        parts.append(f"id contient « {filters.q} »")
    if filters.phone:
        parts.append(f"numéro finissant par {filters.phone}")
    return ", ".join(parts)

