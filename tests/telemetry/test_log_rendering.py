"""The cheap paths of the log renderer write what the plain ones wrote: templates filled with
``%``, the phone pattern that starts with a character class, the escape's pre-tests, the JSON
timestamp formatted once per millisecond, and enum members given as field values."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import string
import sys
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.engine import events as ev
from service.engine.states import Channel, Outcome, Purpose, State
from telemetry import logs
from telemetry import names as n
from telemetry.events import EVENTS

# The phone pattern as the manual's masking rule says it (what ``logs._PHONE`` must match).
REFERENCE_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d .\-]{7,}\d)(?!\w)")
PHONE_TEXT = st.text(alphabet=st.sampled_from("0123456789012345  ..--++ab_éX\u0663\u0660\n*()"), max_size=40)


def test_every_template_is_filled_with_percent() -> None:
    """Every manual template has a ``%`` form (fields are plain ``{name}``)."""
    assert set(logs._FORMS) == set(logs.TEMPLATES)


@pytest.mark.parametrize("tag", sorted(logs.TEMPLATES))
@pytest.mark.parametrize(
    "value", ["x", "50% %s %(a)s {b} %%", "", 0, 12, True, None, 1.5, State.CONFIRMED, Channel.VOICE],
)
def test_percent_form_fills_as_format_map(tag: str, value: Any) -> None:
    """``fill`` and the text renderer write ``template.format_map(fields)`` for any value."""
    template = logs.TEMPLATES[tag]
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    fields = {name: value for name in names} | {"extra": "ignored"}
    assert logs.fill(tag, fields) == template.format_map(fields)
    assert logs.render_text(tag, fields) == template.format_map(fields)


@pytest.mark.parametrize("template", ["50% {a}, {b}", "{a}", "{{x}} %s {a}", "x {a:>3}", "x {a!r}", "{a.b}"])
def test_percent_form_of_other_templates(template: str) -> None:
    """A literal "%" or brace survives; a field with a format or a conversion has no form."""
    fields = {"a": "v%s", "b": 7}
    form = logs._positional(template)
    if form is None:
        assert any(spec or conv or not str(name).isidentifier()
                   for _, name, spec, conv in string.Formatter().parse(template) if name is not None)
        return
    text, values = form
    assert text % values(fields) == template.format_map(fields)


def test_a_missing_field_fails_as_format_map_does() -> None:
    """A field the template needs and the event did not give is an error either way."""
    with pytest.raises(KeyError):
        logs.fill(next(iter(logs.TEMPLATES)), {})


@settings(max_examples=3000, deadline=None)
@given(PHONE_TEXT)
def test_phone_pattern_matches_as_the_rule(text: str) -> None:
    """The class-first phone pattern finds exactly the reference pattern's matches."""
    found = [(m.span(), m.group(1)) for m in logs._PHONE.finditer(text)]
    assert found == [(m.span(), m.group(1)) for m in REFERENCE_PHONE.finditer(text)]


@pytest.mark.parametrize("text", [
    "appelez le 06 12 34 56 78", "+33 6 12 34 56 78", "+33612345678 ou 0612345678", "x0612345678",
    "06.12.34.56.78.", "tel:06-12-34-56-78", "1. samedi 12 décembre à 12h40 2. samedi 12 décembre à 14h",
    "++33612345678", "_0612345678", "0612345678_", "\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661",
])
def test_phones_are_masked(text: str) -> None:
    """Known phone shapes are masked as the reference pattern masks them."""
    assert [m.span() for m in logs._PHONE.finditer(text)] == [m.span() for m in REFERENCE_PHONE.finditer(text)]


def test_escape_pre_tests_hold_for_every_character() -> None:
    """The escape's cheap tests are exact: only "x" and "X" lower to a text holding "x", and no
    line breaker is printable."""
    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    assert [c for c in chars if "x" in c.lower()] == ["X", "x"]
    assert not [c for c in chars if c.isprintable() and logs._BREAK.search(c)]


@pytest.mark.parametrize("value", [
    "ok", "a\nb", "x\u2028y", "\x85", "nbsp\u00a0here", "SESSION EXPIRÉE", "Session expirée", "eXpIr",
    "[FLOW] x", "a_b", "[RDV_CONFIRMED] m1", "\x7f",
])
def test_escape_value_as_before(value: str) -> None:
    """The escape with its pre-tests answers as the plain searches do."""
    expected = logs._UNSAFE.sub(logs._escape_match, value)
    assert logs.escape_value(value) == expected


def test_json_timestamp_is_the_current_millisecond() -> None:
    """A JSON line's timestamp is ``datetime.now(UTC)`` to the millisecond, however often asked."""
    for _ in range(20_000):
        before = datetime.now(UTC).isoformat(timespec="milliseconds")
        stamp = logs._TIMESTAMPS.now()
        after = datetime.now(UTC).isoformat(timespec="milliseconds")
        assert before <= stamp <= after
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp)


def _enum_types(event_type: type[Any]) -> set[type[enum.Enum]]:
    """The enum types of an event's fields."""
    found: set[type[enum.Enum]] = set()
    hints = typing.get_type_hints(event_type, vars(ev))
    for field in dataclasses.fields(event_type):
        for tp in (hints[field.name], *typing.get_args(hints[field.name])):
            if isinstance(tp, type) and issubclass(tp, enum.Enum):
                found.add(tp)
    return found


def test_event_enums_write_their_values() -> None:
    """Fields and labels take enum members as they are: every enum of an event is a StrEnum,
    whose ``str()``, ``format()`` and JSON are its value."""
    for event_type in EVENTS:
        if not dataclasses.is_dataclass(event_type):
            continue
        for tp in _enum_types(event_type):
            assert issubclass(tp, enum.StrEnum), tp
            for member in tp:
                assert str(member) == f"{member}" == json.loads(json.dumps(member)) == member.value


def test_enum_members_render_as_values() -> None:
    """A line built from enum members is the line built from their values, text and JSON."""
    members = {"channel": Channel.VOICE, "outcome": Outcome.CONFIRMED, "state": State.CONFIRMED,
               "turns": 3, "reason": "-", "purpose": Purpose.BOOK, "conv_id": "c1"}
    values = {k: v.value if isinstance(v, enum.Enum) else v for k, v in members.items()}
    tag = n.LOG_CONVERSATION_ENDED
    assert logs.render_text(tag, dict(members)) == logs.render_text(tag, dict(values))
    as_json = json.loads(logs.render_json(tag, dict(members)))
    expected = json.loads(logs.render_json(tag, dict(values)))
    as_json.pop("timestamp"), expected.pop("timestamp")
    assert as_json == expected
