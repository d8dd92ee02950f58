"""Log files of the manual's format (this engine's, text or JSON, or an older one's) read into call facts.

A recognised line is normalised to the stored form of the event that wrote it and folded like
the store's events (:mod:`telemetry.events`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from service.engine import events as ev
from service.engine.states import Outcome, State
from telemetry import events
from telemetry import names as n
from telemetry.facts import CallFacts


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One recognised line of the seed's log format."""

    tag: str
    conv_id: str
    values: Mapping[str, str]
    at: datetime | None = None


# Every tag of a line an engine event (or the end of a Vapi call) writes.
_TAGS: tuple[str, ...] = events.LOG_TAGS
_TAG_RE = re.compile(
    "|".join(
        re.escape(t) if t.startswith("[") else rf"(?<![\w\[]){re.escape(t)}(?![\w\]])" for t in _TAGS
    )
)
_EXPIRED_FR = re.compile(r"session expir[ée]e", re.IGNORECASE)
_CONV_KEY = re.compile(r"\bconv(?:_id|ersation_id)?=\"?([^\s,\"]+)")
_CONV_TOKEN = re.compile(r"\b(conv_[A-Za-z0-9_-]+)")
_FIRST_TOKEN = re.compile(r"\s*([^\s,:\"]+)")
_ARROW = re.compile(r"([A-Z_]+)\s*(?:→|->)\s*([A-Z_]+)")
# key=value pairs separated by commas (this engine) or spaces (older ones); quoted values
# may hold commas; an unquoted value runs to the next separator ("name=Jean Dupont").
_KV = re.compile(r"([A-Za-z_]+)=(\"(?:[^\"\\]|\\.)*\"|.*?)(?=\s*,|\s+[A-Za-z_]+=|\s*$)")
_LEADING_TIME = re.compile(
    r"^\s*\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
)


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def parse_log_line(line: str) -> LogRecord | None:
    """The record of one log line (text or JSON mode, any prefix), or None if not one of ours."""
    text = line.strip()
    at: datetime | None = None
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            at = _timestamp(str(body.get("timestamp") or body.get("time") or "")) or None
            text = str(body.get("event") or body.get("message") or body.get("msg") or "")
    if at is None:
        stamp = _LEADING_TIME.match(text)
        at = _timestamp(stamp.group(1)) if stamp else None
    match = _TAG_RE.search(text)
    if match is None:
        if _EXPIRED_FR.search(text):
            conv = _CONV_KEY.search(text) or _CONV_TOKEN.search(text)
            if conv is not None:
                return LogRecord(n.LOG_SESSION_EXPIRED, conv.group(1), {}, at)
        return None
    tag = match.group(0)
    rest = text[match.end():]
    first = _FIRST_TOKEN.match(rest)
    conv_id: str | None = None
    if first is not None and "=" not in first.group(1):
        conv_id = first.group(1)
        rest = rest[first.end():]
    else:
        keyed = _CONV_KEY.search(rest)
        conv_id = keyed.group(1) if keyed else None
    if not conv_id:
        return None
    values: dict[str, str] = {}
    if tag == n.LOG_STATE_CHANGE:
        arrow = _ARROW.search(rest)
        if arrow is None:
            return None
        values = {"from_state": arrow.group(1), "to_state": arrow.group(2)}
    else:
        for key, raw in _KV.findall(rest):
            value = raw.strip()
            if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
                value = value[1:-1]
            values.setdefault(key.lower(), value)
    return LogRecord(tag, conv_id, values, at)


_ENDED = ev.ConversationEnded.__name__
_TERMINAL_OUTCOMES = {
    State.CONFIRMED.value: Outcome.CONFIRMED.value,
    State.CANCELLED.value: Outcome.CANCELLED.value,
    State.TRANSFERRED.value: Outcome.TRANSFERRED.value,
    State.INTENT_ROUTER.value: Outcome.INTENT_ROUTER.value,
}


def facts_from_log(lines: Iterable[str], since: datetime | None = None) -> list[CallFacts]:
    """Facts of every conversation in a log of the seed's format (this engine or an older one).

    Lines with a timestamp (JSON mode, or a leading ISO time as log platforms add) before
    ``since`` are skipped; lines without one are all read. When the log has no
    ``conversation_ended`` line at all (an older engine), a conversation whose last state is
    not terminal is counted as abandoned; otherwise it is still in progress.
    """
    by_id: dict[str, CallFacts] = {}
    ends_logged = False
    for line in lines:
        record = parse_log_line(line)
        if record is None or (since is not None and record.at is not None and record.at < since):
            continue
        facts = by_id.get(record.conv_id)
        if facts is None:
            facts = by_id[record.conv_id] = CallFacts(
                conv_id=record.conv_id, synthetic=n.is_synthetic(record.conv_id)
            )
        if record.at is not None:
            facts.last_seen_at = record.at
        kind, data = events.from_log(record.tag, record.values)
        events.fold(facts, kind, data)
        ends_logged |= kind == _ENDED
    for facts in by_id.values():
        if facts.outcome is None and facts.final_state is not None:
            if facts.final_state in _TERMINAL_OUTCOMES:
                facts.outcome = _TERMINAL_OUTCOMES[facts.final_state]
            elif not ends_logged:
                facts.outcome = Outcome.EXPIRED.value if facts.expired else Outcome.ABANDONED.value
        elif facts.outcome is None and facts.confirmed_logged:
            facts.outcome = Outcome.CONFIRMED.value
    return list(by_id.values())
