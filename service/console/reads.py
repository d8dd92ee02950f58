"""The console's reads: the same store calls the JSON operator routes make, nothing more.

Every read goes through the turn loop's store guard (a slow or down store is a 503, never a
hang) with the operator scans' timeout. Nothing here is on the turn path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from service import stats
from service.http.common import Services
from service.http.operator import traced, window_facts
from service.storage.base import Timeline, TracedTimeline


async def facts_between(svc: Services, since: datetime, before: datetime | None = None) -> list[stats.CallFacts]:
    """Facts of the conversations last seen since ``since`` (and before ``before`` when
    given): the stats' own reading."""
    facts = await window_facts(svc, since)
    if before is None:
        return facts
    return [f for f in facts if f.last_seen_at is None or f.last_seen_at < before]


async def timeline(svc: Services, conv_id: str) -> TracedTimeline | None:
    """The timeline ``GET /api/conversations/{conv_id}`` answers an operator (unmasked), with
    its trace id and, when ``RDV_TRACE_UI_URL`` is set, the trace link; None if unknown."""
    found = await svc.scans.timeline(conv_id)
    stored = await svc.guarded.load(conv_id)
    if found is None or stored is None:
        return None
    return traced(svc, found, stored.conversation)


async def exists(svc: Services, conv_id: str) -> bool:
    """True when a conversation with exactly this id is stored (any age)."""
    return await svc.guarded.load(conv_id) is not None


async def caller_phones(svc: Services, conv_ids: Iterable[str]) -> dict[str, str | None]:
    """The caller number (E.164, or None when withheld) of each conversation."""
    out: dict[str, str | None] = {}
    for conv_id in conv_ids:
        stored = await svc.guarded.load(conv_id)
        out[conv_id] = stored.conversation.caller_phone if stored is not None else None
    return out


async def events_of(svc: Services, since: datetime, kinds: tuple[str, ...]) -> list[Any]:
    """Stored engine events of ``kinds`` since ``since``, oldest first."""
    found: list[Any] = await svc.scans.events_since(since, kinds)
    return found


async def timelines(svc: Services, conv_ids: Iterable[str]) -> list[Timeline]:
    """The stored timelines of these conversations (unknown ids skipped)."""
    out: list[Timeline] = []
    for conv_id in conv_ids:
        found = await svc.scans.timeline(conv_id)
        if found is not None:
            out.append(found)
    return out


async def live_count(svc: Services) -> int:
    """How many conversations have no outcome yet (the metrics' active gauge reading)."""
    counts = await svc.guarded.active_counts()
    return sum(counts.values())


async def seen_since(svc: Services, since: datetime) -> int:
    """How many conversations were last seen at or after ``since``."""
    rows = await svc.scans.conversations_seen_since(since)
    return len(rows)
