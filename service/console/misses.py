"""The not-understood inbox: what callers said when the assistant had to ask again.

Read from the stored events (``RecoveryStepped``, ``RecoveryLimitReached``, ``FillerDetected``)
and the turn each one belongs to (its ``TurnReceived``), grouped by the state the caller was
in and the field that was not understood, with masked examples. The export is the input of
``rdv understand`` (task ``turn``), one JSON object per line, ready to become test cases.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from service.console import french
from service.console.masking import mask_utterance
from service.engine import events as ev

MISS_KINDS: Final = (ev.RecoveryStepped.__name__, ev.RecoveryLimitReached.__name__, ev.FillerDetected.__name__)
MAX_CONVERSATIONS: Final = 300  # timelines read for one page: the most recent conversations with misses
EXAMPLES: Final = 5


@dataclass(frozen=True, slots=True)
class Miss:
    """One caller turn the assistant did not understand, its words masked."""

    conv_id: str
    at: datetime
    state: str
    field: str
    kind: str  # the event kind
    text: str


@dataclass(slots=True)
class Group:
    """The misses of one field in one state."""

    state: str
    field: str
    field_label: str
    steps: int = 0
    limits: int = 0
    fillers: int = 0
    conversations: set[str] = dataclasses.field(default_factory=set)
    examples: list[Miss] = dataclasses.field(default_factory=list)

    @property
    def total(self) -> int:
        """Every miss of the group."""
        return self.steps + self.limits + self.fillers


def recent_conversations(events: Sequence[Any], limit: int = MAX_CONVERSATIONS) -> list[str]:
    """Ids of the conversations with misses, most recent miss first, at most ``limit``."""
    seen: dict[str, None] = {}
    for event in reversed(events):
        seen.setdefault(event.conv_id, None)
        if len(seen) >= limit:
            break
    return list(seen)


def _known_names(timeline: Mapping[str, Any]) -> list[str]:
    names = [str(b.get("name")) for b in timeline.get("bookings", []) if b.get("name")]
    names += [
        str((e.get("data") or {}).get("name")) for e in timeline.get("events", [])
        if e.get("kind") == ev.AppointmentConfirmed.__name__ and (e.get("data") or {}).get("name")
    ]
    return names


def misses_of(timeline: Mapping[str, Any], tz: ZoneInfo, since: datetime | None = None) -> list[Miss]:
    """The misses of one conversation (those at or after ``since``), each with its turn's words."""
    turns = {int(t["turn"]): t for t in timeline.get("turns", [])}
    names = _known_names(timeline)
    out: list[Miss] = []
    current: Mapping[str, Any] | None = None
    for e in timeline.get("events", []):
        kind, data = e.get("kind"), e.get("data") or {}
        if kind == ev.TurnReceived.__name__:
            current = turns.get(int(data.get("turn", -1)) + 1)
            continue
        if kind not in MISS_KINDS or current is None:
            continue
        at = datetime.fromisoformat(current["at"])
        if since is not None and at < since:
            continue
        state = str(data.get("state") or current["state_before"])
        if kind == ev.FillerDetected.__name__:
            fld = french.FILLER
        else:
            state = str(current["state_before"])
            fld = str(data.get("field"))
        local = at.astimezone(tz)
        out.append(Miss(str(timeline["conv_id"]), local, state, fld, str(kind),
                        mask_utterance(str(current["text"]), state, local, names)))
    return out


def groups(misses: Iterable[Miss]) -> list[Group]:
    """Misses grouped by (state, field), the largest group first; newest examples first."""
    by_key: dict[tuple[str, str], Group] = {}
    for miss in sorted(misses, key=lambda m: m.at, reverse=True):
        group = by_key.get((miss.state, miss.field))
        if group is None:
            group = by_key[(miss.state, miss.field)] = Group(miss.state, miss.field, french.field(miss.field))
        if miss.kind == ev.RecoveryStepped.__name__:
            group.steps += 1
        elif miss.kind == ev.RecoveryLimitReached.__name__:
            group.limits += 1
        else:
            group.fillers += 1
        group.conversations.add(miss.conv_id)
        if len(group.examples) < EXAMPLES and all(x.text != miss.text for x in group.examples):
            group.examples.append(miss)
    return sorted(by_key.values(), key=lambda g: (-g.total, g.state, g.field))


def understand_lines(misses: Iterable[Miss]) -> str:
    """JSON lines in ``rdv understand``'s input format (task ``turn``), one per distinct
    (state, masked words), oldest first; ``expected`` is left for a person to fill in."""
    seen: set[tuple[str, str]] = set()
    lines: list[str] = []
    for miss in sorted(misses, key=lambda m: m.at):
        key = (miss.state, miss.text)
        if key in seen or not miss.text.strip():
            continue
        seen.add(key)
        lines.append(json.dumps(
            {"task": "turn", "text": miss.text, "context": {"state": miss.state, "now": miss.at.isoformat()},
             "expected": None},
            ensure_ascii=False,
        ))
    return "".join(line + "\n" for line in lines)
