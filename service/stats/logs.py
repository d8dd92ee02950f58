"""Log files of the manual's format (this engine's, text or JSON, or an older one's) read into call facts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from service.engine.states import BookingResult, Outcome, OverrideIntent, State, TransferReason
from service.stats.facts import CallFacts
from telemetry import names as n


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One recognised line of the seed's log format."""

    tag: str
    conv_id: str
    values: Mapping[str, str]
    at: datetime | None = None


_TAGS: tuple[str, ...] = (
    n.LOG_FLOW, n.LOG_STATE_CHANGE, n.LOG_SLOTS_SENT, n.LOG_BOOKING_ATTEMPT, n.LOG_BOOKING_RESULT,
    n.LOG_BOOKING_RETRY, n.LOG_INTERRUPTION, n.LOG_RDV_CONFIRMED, n.LOG_ANTI_LOOP,
    n.LOG_SESSION_EXPIRED, n.LOG_RECOVERY_LIMIT, n.LOG_RECOVERY_STEP, n.LOG_INTENT_OVERRIDE,
    n.LOG_FILLER, n.LOG_FAQ_ANSWERED, n.LOG_BOOKING_CANCELLED, n.LOG_CONVERSATION_ENDED,
    n.LOG_CONVERSATION_STARTED, n.LOG_VAPI_CALL_ENDED, n.LOG_NO_SLOT, n.LOG_TRANSFERRED,
)
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


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


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
        ends_logged |= _apply_record(facts, record)
    for facts in by_id.values():
        if facts.outcome is None and facts.final_state is not None:
            if facts.final_state in _TERMINAL_OUTCOMES:
                facts.outcome = _TERMINAL_OUTCOMES[facts.final_state]
            elif not ends_logged:
                facts.outcome = Outcome.EXPIRED.value if facts.expired else Outcome.ABANDONED.value
        elif facts.outcome is None and facts.confirmed_logged:
            facts.outcome = Outcome.CONFIRMED.value
    return list(by_id.values())


def _apply_record(facts: CallFacts, record: LogRecord) -> bool:
    """Fold one log record into the facts; True when it is a ``conversation_ended`` line."""
    v = record.values
    tag = record.tag
    if tag == n.LOG_FLOW:
        state = v.get("state")
        turn = _int(v.get("turn"))
        if turn == 0:
            # A first turn: a new conversation, or one restarted after expiry under the same id.
            facts.outcome = None
        if state:
            facts.states_seen.add(state)
            facts.final_state = state
        if turn is not None:
            facts.turns = turn + 1 if turn == 0 else max(facts.turns, turn + 1)
    elif tag == n.LOG_STATE_CHANGE:
        facts.states_seen.add(v["to_state"])
        facts.final_state = v["to_state"]
    elif tag == n.LOG_SLOTS_SENT:
        length = _int(v.get("length", v.get("len")))
        facts.slot_lengths.append(length if length is not None else len(v.get("msg", "")))
        if v.get("channel"):
            facts.channel = v["channel"]
    elif tag == n.LOG_BOOKING_RESULT:
        ok = v.get("success", "").strip().lower() in ("true", "1", "yes")
        facts.booking_results.append(BookingResult.SUCCESS.value if ok else BookingResult.SLOT_TAKEN.value)
    elif tag == n.LOG_BOOKING_RETRY:
        facts.booking_retries += 1
    elif tag == n.LOG_INTERRUPTION:
        facts.interruptions += 1
    elif tag == n.LOG_RDV_CONFIRMED:
        facts.confirmed_logged = True
        facts.states_seen.add(State.CONFIRMED.value)
        facts.final_state = State.CONFIRMED.value
    elif tag == n.LOG_ANTI_LOOP:
        facts.anti_loop = True
    elif tag == n.LOG_SESSION_EXPIRED:
        facts.expired = True
    elif tag == n.LOG_RECOVERY_STEP:
        facts.recovery_steps += 1
    elif tag == n.LOG_RECOVERY_LIMIT:
        facts.recovery_limits.append(v.get("field") or "unknown")
    elif tag == n.LOG_INTENT_OVERRIDE:
        if v.get("intent") == OverrideIntent.HUMAN:
            facts.human_requested = True
        elif v.get("intent") == OverrideIntent.FAQ and v.get("state"):
            facts.faq_states.append(v["state"])
    elif tag == n.LOG_FAQ_ANSWERED:
        # This engine logs both intent_override and faq_answered for one FAQ: count it once.
        if v.get("state") and v["state"] not in facts.faq_states:
            facts.faq_states.append(v["state"])
    elif tag == n.LOG_FILLER:
        facts.fillers += 1
    elif tag == n.LOG_BOOKING_CANCELLED:
        facts.cancelled_logged = True
    elif tag == n.LOG_NO_SLOT:
        facts.transfer_reason = TransferReason.NO_SLOT.value
    elif tag == n.LOG_TRANSFERRED:
        facts.transfer_reason = v.get("reason") or facts.transfer_reason
    elif tag == n.LOG_CONVERSATION_STARTED:
        facts.channel = v.get("channel") or facts.channel
    elif tag == n.LOG_CONVERSATION_ENDED:
        facts.outcome = v.get("outcome") or facts.outcome
        facts.final_state = v.get("state") or facts.final_state
        facts.channel = v.get("channel") or facts.channel
        turns = _int(v.get("turns"))
        if turns is not None:
            facts.turns = turns
        reason = v.get("reason")
        if reason and reason != "-":
            facts.ended_reason = reason
        return True
    elif tag == n.LOG_VAPI_CALL_ENDED:
        reason = v.get("reason")
        if reason and reason != "-":
            facts.ended_reason = reason
    return False

