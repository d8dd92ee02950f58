"""Log lines: the seed's text forms (default) or JSON, through one lean structlog chain.

The observer emits key/value events; the renderer formats them. In text mode each line is
exactly the operators' manual's form (``[FLOW] conv_abc123, state=START, turn=0``) so their
grep recipes work unchanged; in JSON mode the same text is the ``event`` field and every
value is its own key, with ``trace_id``/``span_id``. Phone numbers and names are masked
unless the operator turns that off (``RDV_LOG_PII=true``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog

from telemetry import names as n

# One template per tag: the seed's exact wording. Values come from the event's keys.
TEMPLATES: Mapping[str, str] = {
    n.LOG_FLOW: "[FLOW] {conv_id}, state={state}, turn={turn}",
    n.LOG_STATE_CHANGE: "[STATE_CHANGE] {conv_id}: {from_state} → {to_state}",
    n.LOG_SLOTS_SENT: '[SLOTS_SENT] {conv_id}, channel={channel}, length={length}, msg="{msg}"',
    n.LOG_BOOKING_ATTEMPT: "[BOOKING_ATTEMPT] {conv_id}, slot_idx={slot_idx}",
    n.LOG_BOOKING_RESULT: "[BOOKING_RESULT] {conv_id}, success={success}",
    n.LOG_BOOKING_RETRY: "[BOOKING_RETRY] {conv_id}, retry={retry}, preference={preference}",
    n.LOG_INTERRUPTION: "[INTERRUPTION] {conv_id}, slot_idx={slot_idx}",
    n.LOG_RDV_CONFIRMED: "[RDV_CONFIRMED] {conv_id}, slot={slot}, name={name}",
    n.LOG_ANTI_LOOP: "[ANTI_LOOP] {conv_id}, turn={turn}, max_turns={max_turns}",
    n.LOG_NO_SLOT: "[NO_SLOT] {conv_id}, preference={preference}, state={state}",
    n.LOG_TRANSFERRED: "[TRANSFER] {conv_id}, reason={reason}, state={state}",
    n.LOG_SESSION_EXPIRED: "SESSION_EXPIRED {conv_id}, state={state}, idle_s={idle_s}",
    n.LOG_RECOVERY_LIMIT: "recovery_limit_reached {conv_id}, field={field}, attempts={attempts}, to={to}",
    n.LOG_RECOVERY_STEP: "recovery_step {conv_id}, field={field}, attempt={attempt}",
    n.LOG_INTENT_OVERRIDE: "intent_override {conv_id}, state={state}, intent={intent}, to={to}",
    n.LOG_FILLER: "filler_detected {conv_id}, state={state}",
    n.LOG_FAQ_ANSWERED: "faq_answered {conv_id}, topic={topic}, state={state}",
    n.LOG_BOOKING_CANCELLED: "booking_cancelled {conv_id}",
    n.LOG_NOT_UNDERSTOOD: "not_understood {conv_id}, state={state}, field={field}, reason={reason}, turn={turn}",
    n.LOG_CONVERSATION_ENDED: (
        "conversation_ended {conv_id}, channel={channel}, outcome={outcome}, state={state}, "
        "turns={turns}, reason={reason}, purpose={purpose}"
    ),
    n.LOG_CONVERSATION_STARTED: "conversation_started {conv_id}, channel={channel}",
    n.LOG_VAPI_CALL_ENDED: "vapi_call_ended {conv_id}, reason={reason}, category={category}",
}

_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d .\-]{7,}\d)(?!\w)")


def mask_phone(text: str) -> str:
    """Phone numbers in ``text`` with all but the first three and last two digits hidden."""

    def hide(match: re.Match[str]) -> str:
        value = match.group(1)
        digits = [c for c in value if c.isdigit()]
        if len(digits) < 9:
            return value
        keep_head, keep_tail = 3 if value.startswith("+") else 2, 2
        seen = 0
        out = []
        for c in value:
            if c.isdigit():
                seen += 1
                out.append(c if seen <= keep_head or seen > len(digits) - keep_tail else "*")
            else:
                out.append(c)
        return "".join(out)

    return _PHONE.sub(hide, text)


def mask_name(name: str) -> str:
    """"Jean Dupont" → "J*** D***": enough to tell callers apart, not to identify them."""
    return " ".join(w[:1] + "***" for w in name.split() if w) or name


def _masker(enabled: bool) -> Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]:
    def process(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not enabled:
            return event
        if isinstance(event.get("name"), str):
            event["name"] = mask_name(event["name"])
        for key, value in event.items():
            if isinstance(value, str) and key not in ("event", "conv_id", "trace_id", "span_id"):
                event[key] = mask_phone(value)
        return event

    return process


# What a value must not carry into a line: anything a reader takes as a line break (C0 and
# C1 controls, DEL, U+2028/U+2029), and the manual's own tags (so that a value cannot make a
# line look like another kind to grep or ``rdv diagnose --logs``). Normal values hold none,
# so their lines stay byte for byte the manual's.
_LINE_BREAKERS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_BREAK = re.compile(f"[{_LINE_BREAKERS}]")
_UNSAFE = re.compile(
    f"[{_LINE_BREAKERS}]|"
    + "|".join(re.escape(tag) for tag in sorted(TEMPLATES, key=len, reverse=True))
    + "|(?i:session expir)"
)
# Every tag holds "[" or "_" (tested), the French expiry phrase "xpir": values without any
# of them (most) skip the slower search for tags.
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_match(match: re.Match[str]) -> str:
    text = match.group(0)
    first = text[0]
    code = _ESCAPES.get(first) or (f"\\x{ord(first):02x}" if ord(first) < 0x100 else f"\\u{ord(first):04x}")
    # A tag keeps its letters but loses its first character, so no pattern matches it.
    return code + text[1:]


def escape_value(value: str) -> str:
    """``value`` with line breaks and controls escaped (``\\n``, ``\\x85``, ``\\u2028``) and
    the manual's tags defused (``\\x5bRDV_CONFIRMED]``); unchanged when it holds neither."""
    if "[" in value or "_" in value or "xpir" in value.lower():
        if _UNSAFE.search(value) is None:
            return value
    elif _BREAK.search(value) is None:
        return value
    return _UNSAFE.sub(_escape_match, value)


def _escaper(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every value of a line (not the tag) through :func:`escape_value`."""
    for key, value in event.items():
        if key != "event" and isinstance(value, str):
            event[key] = escape_value(value)
    return event


def _text(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    template = TEMPLATES.get(event["event"])
    if template is None:
        extras = ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "trace_id", "span_id"))
        return f"{event['event']} {extras}".rstrip()
    return template.format_map(event)


def _json(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    tag = event["event"]
    template = TEMPLATES.get(tag)
    body = dict(event)
    body["tag"] = tag
    body["event"] = template.format_map(event) if template else tag
    body["level"] = body.get("level", "info")
    body["timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    return json.dumps(body, ensure_ascii=False, default=str)


class _Writer:
    """structlog's final sink: one line per event, written and flushed."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def msg(self, message: str) -> None:
        self.stream.write(message + "\n")
        self.stream.flush()

    info = debug = warning = error = msg


def make_logger(log_format: str, log_pii: bool, stream: TextIO | None) -> Any:
    """A bound structlog logger with the chain: mask → escape → render (text or JSON) → write."""
    renderer = _json if log_format == "json" else _text
    return structlog.wrap_logger(
        _Writer(stream if stream is not None else sys.stdout),
        processors=[_masker(not log_pii), _escaper, renderer],
        cache_logger_on_first_use=True,
    )
