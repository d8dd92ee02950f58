"""Log lines: the seed's text forms (default) or JSON, rendered straight from their templates.

The observer emits key/value events; each is rendered from its template in one step. In
text mode each line is exactly the operators' manual's form (``[FLOW] conv_abc123,
state=START, turn=0``) so their grep recipes work unchanged; in JSON mode the same text is
the ``event`` field and every value is its own key, with ``trace_id``/``span_id``. Phone
numbers and names are masked unless the operator turns that off (``RDV_LOG_PII=true``): in
every value that can hold them, which is every text value but the ones rdv itself chose
from a closed set (states, channels, outcomes, counts…). Lines are written once per
event-loop pass (one write and one flush for all the lines of the pass), at once outside an
event loop, and flushed when the telemetry shuts down or the process exits.
"""

from __future__ import annotations

import atexit
import json
import operator
import re
import string
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from telemetry import names as n
from telemetry.passes import flush_at_end_of_pass

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



def _positional(template: str) -> tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]] | None:
    """``template`` as a ``%`` format and the getter of its fields' values in order, so that
    ``form % values(fields)`` is ``template.format_map(fields)`` (``%s`` writes ``str(v)``,
    which is ``format(v, "")``) at a fraction of the cost; None for a template with a field
    that is more than a plain ``{name}``."""
    parts, keys = [], []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        parts.append(literal.replace("%", "%%"))
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            return None
        parts.append("%s")
        keys.append(name)
    if len(keys) == 1:
        key = keys[0]
        return "".join(parts), lambda fields: (fields[key],)
    return "".join(parts), operator.itemgetter(*keys)


# The templates compiled for ``%`` (what the renderers use).
_FORMS = {tag: form for tag, template in TEMPLATES.items() if (form := _positional(template)) is not None}


def fill(tag: str, fields: Mapping[str, Any]) -> str | None:
    """The template of ``tag`` filled with ``fields`` (None: ``tag`` has none)."""
    form = _FORMS.get(tag)
    if form is not None:
        text, values = form
        return text % values(fields)
    template = TEMPLATES.get(tag)
    return template.format_map(fields) if template is not None else None


# A phone number: "+" or a digit not after a letter, a digit or "+", then digits, spaces, dots
# or dashes, nine characters at least, the last a digit not before a letter or a digit; that
# is (?<![\w+])(\+?\d[\d .\-]{7,}\d)(?!\w), written here to start with the class [+\d] (the
# same matches, tested), which lets ``re`` skip to the next "+" or digit instead of trying a
# match at every character.
_PHONE = re.compile(r"([+\d](?<![\w+][+\d])(?:(?<=\+)\d|(?<=\d))[\d .\-]{7,}\d)(?!\w)")


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
    # No character but "x" and "X" lowers to one holding "x", and every line breaker is
    # unprintable: the cheap tests first, the same answers.
    if "[" in value or "_" in value or (("x" in value or "X" in value) and "xpir" in value.lower()):
        if _UNSAFE.search(value) is None:
            return value
    elif value.isprintable() or _BREAK.search(value) is None:
        return value
    return _UNSAFE.sub(_escape_match, value)


# Keys whose values rdv takes from a closed set of its own (enum values, numbers, hex ids):
# they can hold neither personal data nor a line break, so they are written as they are.
# Every other text value is masked (unless RDV_LOG_PII=true) and escaped.
SAFE_KEYS = frozenset({
    "state", "from_state", "to_state", "channel", "outcome", "purpose", "field", "to", "category",
    "success", "slot_idx", "turn", "turns", "retry", "length", "attempt", "attempts", "max_turns",
    "idle_s", "trace_id", "span_id", "topic", "intent", "signal", "seconds", "count", "deleted",
    "bookings_without_event",
})
# Written unmasked (the conversation's own key), but escaped.
UNMASKED_KEYS = frozenset({"conv_id"})


def clean(fields: dict[str, Any], mask: bool) -> dict[str, Any]:
    """``fields`` with every text value that may hold personal data masked (when ``mask``)
    and every text value not from rdv's closed sets escaped (:func:`escape_value`)."""
    if SAFE_KEYS.issuperset(fields):
        return fields
    for key, value in fields.items():
        if key in SAFE_KEYS or not isinstance(value, str):
            continue
        if mask and key not in UNMASKED_KEYS:
            if key == "name":
                value = mask_name(value)
            value = mask_phone(value)
        fields[key] = escape_value(value)
    return fields


def render_text(tag: str, fields: Mapping[str, Any]) -> str:
    """The manual's line of ``tag`` (its template filled), or ``tag k=v, …`` without one."""
    form = _FORMS.get(tag)
    if form is not None:
        text, values = form
        return text % values(fields)
    line = fill(tag, fields)
    if line is None:
        extras = ", ".join(f"{k}={v}" for k, v in fields.items() if k not in ("trace_id", "span_id"))
        return f"{tag} {extras}".rstrip()
    return line


# ``json.dumps(body, ensure_ascii=False, default=str)``, without building an encoder per line.
_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


class _Timestamps:
    """``datetime.now(UTC).isoformat(timespec="milliseconds")``, formatted once per
    millisecond: the lines of a turn, written within the same one, share it."""

    def __init__(self) -> None:
        self.last = (-1, "")

    def now(self) -> str:
        """The current time, as a JSON line's ``timestamp``."""
        ms = time.time_ns() // 1_000_000
        last_ms, text = self.last
        if ms != last_ms:
            at = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
            text = at.isoformat(timespec="milliseconds")
            self.last = (ms, text)
        return text


_TIMESTAMPS = _Timestamps()


def render_json(tag: str, fields: dict[str, Any]) -> str:
    """The line as one JSON object: every value, the manual's text as ``event``, the tag
    (added to ``fields``, a dict of the caller's that it gives up)."""
    text = fill(tag, fields)
    fields["event"] = tag if text is None else text
    fields["tag"] = tag
    fields["level"] = "info"
    fields["timestamp"] = _TIMESTAMPS.now()
    return _JSON.encode(fields)


_WRITERS: weakref.WeakSet[LineWriter] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for writer in list(_WRITERS):
        writer.flush()


class LineWriter:
    """Lines gathered during one event-loop pass, written and flushed together at its end."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: list[str] = []
        self.scheduled = False
        _WRITERS.add(self)

    def write(self, line: str) -> None:
        """Take one line; written at the end of this event-loop pass (at once outside one)."""
        self.lines.append(line)
        if not self.scheduled:
            self.scheduled = flush_at_end_of_pass(self.flush) is not None

    def flush(self) -> None:
        """Write and flush every line taken so far."""
        self.scheduled = False
        if not self.lines:
            return
        text = "\n".join(self.lines)
        self.lines = []
        self.stream.write(text + "\n")
        self.stream.flush()


class LineLogger:
    """``info(tag, **fields)``: one masked, escaped line rendered from the tag's template."""

    def __init__(self, log_format: str, log_pii: bool, stream: TextIO) -> None:
        self.mask = not log_pii
        self.json = log_format == "json"
        self.render = render_json if self.json else render_text
        self.writer = LineWriter(stream)
        # Conversation ids as written (escaped), for the last few thousand conversations.
        self._conv_ids: dict[str, str] = {}

    def line(self, tag: str, fields: dict[str, Any]) -> None:
        """Log ``tag`` with ``fields`` (the dict is the logger's from then on)."""
        self.writer.write(self.render(tag, clean(fields, self.mask)))

    def conv_line(self, tag: str, conv_id: str, fields: dict[str, Any]) -> None:
        """Log ``tag`` of the conversation ``conv_id`` with ``fields``: the line of
        ``info(tag, conv_id=conv_id, **fields)`` (the dict is the logger's from then on)."""
        escaped = self._conv_ids.get(conv_id)
        if escaped is None:
            escaped = self._escape_id(conv_id)
        form = None if self.json else _FORMS.get(tag)
        if form is None:
            self.writer.write(self.render(tag, {"conv_id": escaped, **clean(fields, self.mask)}))
            return
        # A text line from its template: the order of the fields does not matter.
        if not SAFE_KEYS.issuperset(fields):
            clean(fields, self.mask)
        fields["conv_id"] = escaped
        text, values = form
        self.writer.write(text % values(fields))

    def _escape_id(self, conv_id: str) -> str:
        """``conv_id`` as :func:`clean` writes it (escaped, never masked), kept for next time."""
        if len(self._conv_ids) > 4096:
            self._conv_ids.clear()
        escaped = self._conv_ids[conv_id] = escape_value(conv_id)
        return escaped

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` with ``fields``."""
        self.writer.write(self.render(event, clean(fields, self.mask)))

    debug = warning = error = info

    def flush(self) -> None:
        """Write the lines of the current event-loop pass now."""
        self.writer.flush()


def make_logger(log_format: str, log_pii: bool, stream: TextIO | None) -> LineLogger:
    """The logger: mask → escape → render (text or JSON) → write once per event-loop pass."""
    return LineLogger(log_format, log_pii, stream if stream is not None else sys.stdout)
