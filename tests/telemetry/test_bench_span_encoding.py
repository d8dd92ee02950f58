"""The bench's span-encoding figure counts the spans a booking conversation really emits."""

from __future__ import annotations

import pytest

from bench.__main__ import span_encoding


def test_the_scripted_booking_emits_eleven_spans_over_four_turns() -> None:
    """The conversation, four turns, five states (CONFIRMED included) and one booking attempt:
    11 spans over 4 turns, each encoded at some measurable cost."""
    found = span_encoding(conversations=2)
    assert found["span_records_per_turn"] == 2.75
    assert found["span_encode_us_per_span"] > 0
    assert found["span_encode_us_per_turn"] == pytest.approx(found["span_encode_us_per_span"] * 2.75, abs=0.2)
