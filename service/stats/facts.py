"""One conversation's facts (what the checklist looks at) from the store's rows and events.

:class:`CallFacts` and the fold of each event are the telemetry contract's
(:mod:`telemetry.facts`, :mod:`telemetry.events`): a log file's lines are folded the same way
(:mod:`service.stats.logs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from telemetry import names as n
from telemetry.events import EVENT_KINDS, fold
from telemetry.facts import IN_PROGRESS, CallFacts

__all__ = ["EVENT_KINDS", "IN_PROGRESS", "CallFacts", "facts_from_store"]


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def facts_from_store(rows: Iterable[Mapping[str, Any]], events: Iterable[Any]) -> list[CallFacts]:
    """Facts of the conversations in ``rows`` (``conversations_seen_since``) from their events
    (``EventRecord``s, oldest first); events of other conversations are ignored. What the row
    holds (state, outcome, turns, channel, ended reason) wins over what the events tell."""
    by_id: dict[str, tuple[CallFacts, Mapping[str, Any]]] = {}
    for row in rows:
        conv_id = str(row["conv_id"])
        facts = CallFacts(
            conv_id=conv_id,
            last_seen_at=_when(row.get("last_seen_at")),
            synthetic=bool(row.get("synthetic")) or n.is_synthetic(conv_id),
        )
        by_id[conv_id] = (facts, row)
    for event in events:
        found = by_id.get(event.conv_id)
        if found is not None:
            fold(found[0], event.kind, event.data)
    for facts, row in by_id.values():
        facts.channel = row.get("channel")
        facts.final_state = row.get("state")
        facts.outcome = row.get("outcome")
        facts.turns = int(row.get("turn_count") or 0)
        facts.ended_reason = row.get("ended_reason")
    return [facts for facts, _ in by_id.values()]
