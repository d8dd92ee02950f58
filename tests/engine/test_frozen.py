"""The engine's ``replace`` makes what ``dataclasses.replace`` makes: an equal, frozen value of
the same class, the same errors, and ``dataclasses.replace`` itself for a class it cannot copy
slot by slot."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest

from service.engine import frozen
from service.engine.frozen import replace
from service.engine.model import BookingRef, Context, Conversation, Preference, Slot
from service.engine.states import Channel, Intent, Purpose, Retry, State
from tests.support import NOW

SLOT = Slot(NOW, NOW + timedelta(minutes=20))
CONTEXT = Context(
    first_name="Jean", last_name="Dupont", preference=Preference(period="morning"), proposed=(SLOT,),
    fails={Retry.NAME: 1}, booked=BookingRef("b1", SLOT, "Jean Dupont"), intent=Intent.BOOK, purpose=Purpose.BOOK,
)
CONVERSATION = Conversation.new("conv_f", Channel.VOICE, NOW, caller_phone="+33612345678")


@pytest.mark.parametrize(
    ("value", "changes"),
    [
        (CONTEXT, {}),
        (CONTEXT, {"chosen": 1}),
        (CONTEXT, {"first_name": None, "fails": {}, "purpose": Purpose.MOVE, "excluded": (NOW,)}),
        (CONVERSATION, {"context": CONTEXT, "state": State.WAIT_CONFIRM, "state_entered_at": NOW}),
        (CONVERSATION, {"outcome": None, "turn_count": 4}),
        (SLOT, {"end": NOW + timedelta(hours=1)}),
    ],
)
def test_the_copy_is_the_value_dataclasses_makes(value: Any, changes: dict[str, Any]) -> None:
    expected = dataclasses.replace(value, **changes)
    copied = replace(value, **changes)
    assert type(copied) is type(expected)
    assert copied == expected and repr(copied) == repr(expected)
    assert copied is not value
    for f in dataclasses.fields(expected):
        assert getattr(copied, f.name) is getattr(expected, f.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(copied, dataclasses.fields(expected)[0].name, None)
    assert frozen._REPLACERS[type(value)] is not dataclasses.replace  # copied slot by slot


def test_the_same_errors() -> None:
    with pytest.raises(TypeError):
        replace(CONTEXT, no_such_field=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        replace(CONTEXT, CONTEXT)  # type: ignore[arg-type, call-arg]
    with pytest.raises(TypeError):
        replace(datetime(2026, 1, 1), year=2027)  # type: ignore[type-var]


@dataclasses.dataclass(frozen=True, slots=True)
class _Checked:
    low: int
    high: int
    width: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        if self.high < self.low:
            raise ValueError("high < low")
        object.__setattr__(self, "width", self.high - self.low)


@dataclasses.dataclass(frozen=True)
class _Plain:
    name: str


def test_a_class_it_cannot_copy_goes_to_dataclasses() -> None:
    """__post_init__ still runs (and checks), a class without slots is copied by dataclasses."""
    assert replace(_Checked(1, 3), high=5) == _Checked(1, 5)
    assert replace(_Checked(1, 3), high=5).width == 4
    with pytest.raises(ValueError, match="high < low"):
        replace(_Checked(1, 3), high=0)
    assert replace(_Plain("a"), name="b") == _Plain("b")
    assert frozen._REPLACERS[_Checked] is dataclasses.replace
    assert frozen._REPLACERS[_Plain] is dataclasses.replace


@dataclasses.dataclass(frozen=True, slots=True)
class _Base:
    low: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Derived(_Base):
    high: int


def test_the_engine_values_are_made_through_a_plain_twin_of_their_slots() -> None:
    for cls in (Context, Conversation, Slot):
        assert frozen._twin(cls, [f.name for f in dataclasses.fields(cls)]) is not None
    copied = replace(CONTEXT, chosen=2)
    assert type(copied) is Context and copied == dataclasses.replace(CONTEXT, chosen=2)
    assert hash(replace(SLOT, end=SLOT.end)) == hash(SLOT)


def test_a_subclass_is_copied_slot_by_slot_through_its_descriptors() -> None:
    """A class with a base of its own has no twin (its layout is its base's and its own)."""
    assert frozen._twin(_Derived, ["low", "high"]) is None
    copied = replace(_Derived(1, 2), high=3)
    assert type(copied) is _Derived and copied == _Derived(1, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        copied.high = 4  # type: ignore[misc]
    assert frozen._REPLACERS[_Derived] is not dataclasses.replace
