"""The diagnosis' suggestions are built from the settings in force and always change them."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from service import stats
from service.config import build_limits
from tests.operator.conftest import apply_suggestion, suggested_changes

ENVS = {
    "defaults": {},
    "raised": {"MAX_TURNS_ANTI_LOOP_VOICE": "60", "SESSION_TTL_MINUTES": "45", "BOOKING_RETRY_MAX_TEXT": "4",
               "RECOVERY_LIMITS_VOICE": "phone=5", "SLOTS_MESSAGE_MAX_CHARS_VOICE": "200"},
    "both-names": {"MAX_TURNS_ANTI_LOOP": "25", "MAX_TURNS_ANTI_LOOP_VOICE": "25", "BOOKING_RETRY_MAX": "0",
                   "RECOVERY_LIMITS": "name=3,slot_choice=3,phone=3", "SLOTS_MESSAGE_MAX_CHARS": "500"},
}
CHANNELS = [(), ("text",), ("voice",), ("text", "voice")]
ADVISED = [c for c in stats.PATTERNS if stats.RECOMMENDATIONS[c].advise is not None]


def test_defaults_give_the_next_values_not_the_current_ones() -> None:
    """With the shipped settings no suggestion restates them (``…_VOICE=40`` is the default)."""
    limits = build_limits({})
    said = {c: stats.advice(c, limits, ["voice"]) for c in ADVISED}
    assert said[stats.Cause.ANTI_LOOP]["suggestion"] == "raise MAX_TURNS_ANTI_LOOP_VOICE from 40 to 60"
    assert said[stats.Cause.SESSION_EXPIRED]["suggestion"] == "raise SESSION_TTL_MINUTES_VOICE from 30 to 45"
    assert said[stats.Cause.LONG_SLOT_MESSAGE]["suggestion"] == "lower SLOTS_MESSAGE_MAX_CHARS_VOICE from 350 to 300"
    assert said[stats.Cause.SLOT_TAKEN]["suggestion"] == "raise BOOKING_RETRY_MAX_VOICE from 2 to 3"
    assert said[stats.Cause.PHONE_RECOVERY]["suggestion"] == (
        "raise RECOVERY_LIMITS_VOICE phone from 3 to 4: RECOVERY_LIMITS_VOICE=name=2,slot_choice=2,phone=4"
    )
    assert said[stats.Cause.ANTI_LOOP]["current"] == "voice 40"


@pytest.mark.parametrize("env", ENVS.values(), ids=ENVS.keys())
@pytest.mark.parametrize("cause", ADVISED, ids=[c.value for c in ADVISED])
@pytest.mark.parametrize("channels", CHANNELS, ids=["unknown", "text", "voice", "both"])
def test_following_a_suggestion_changes_the_settings(env: dict[str, str], cause: stats.Cause,
                                                     channels: tuple[str, ...]) -> None:
    """Whatever is configured (one name for both channels, or per channel), the suggestion
    starts from the value in force, and the settings it leaves differ for every channel it is
    about: it is never a no-op."""
    limits = build_limits(env)
    said = stats.advice(cause, limits, channels)
    assert said["suggestion"], said
    after = build_limits(apply_suggestion(env, said["suggestion"]))
    for channel in channels or ("text", "voice"):
        if cause is stats.Cause.LONG_SLOT_MESSAGE and channel == "text":
            continue  # the spoken-message budget is the voice's
        before_ = next(asdict(v) for k, v in limits.items() if k.value == channel)
        after_ = next(asdict(v) for k, v in after.items() if k.value == channel)
        assert after_ != before_, (channel, said["suggestion"])
    in_force = {
        f"{name}_{c.value.upper()}": str(getattr(v, field))
        for c, v in limits.items()
        for name, field in (("MAX_TURNS_ANTI_LOOP", "max_turns_anti_loop"), ("BOOKING_RETRY_MAX", "booking_retry_max"),
                            ("SESSION_TTL_MINUTES", "session_ttl_minutes"),
                            ("SLOTS_MESSAGE_MAX_CHARS", "slots_message_max_chars"))
    }
    for var, old, new in suggested_changes(said["suggestion"]):
        if var in in_force:
            assert old == in_force[var] != new, said["suggestion"]


def test_nothing_to_suggest_at_the_smallest_budget() -> None:
    """At the smallest spoken-message budget there is no lower value to suggest."""
    said = stats.advice(stats.Cause.LONG_SLOT_MESSAGE, build_limits({"SLOTS_MESSAGE_MAX_CHARS_VOICE": "80"}))
    assert said["suggestion"] is None and said["current"] == "voice 80"
