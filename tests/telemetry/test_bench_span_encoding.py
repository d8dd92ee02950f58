"""The bench's span-encoding figure counts the spans a booking conversation really emits."""

from __future__ import annotations

import pytest

from bench.__main__ import floors, span_encoding, table, verdict


def test_the_scripted_booking_emits_eleven_spans_over_four_turns() -> None:
    """The conversation, four turns, five states (CONFIRMED included) and one booking attempt:
    11 spans over 4 turns, each encoded at some measurable cost."""
    found = span_encoding(conversations=2)
    assert found["span_records_per_turn"] == 2.75
    assert found["span_encode_us_per_span"] > 0
    assert found["span_encode_us_per_turn"] == pytest.approx(found["span_encode_us_per_span"] * 2.75, abs=0.2)


def test_floors_are_the_ratios_left_when_telemetry_costs_only_its_encoding() -> None:
    """With telemetry reduced to the SDK's encoding of its spans, on ÷ off is (off + encoding)
    ÷ off and echo ÷ turn is echo ÷ (off + encoding); figures a run lacks give no floor."""
    res = {
        "telemetry_off_cpu_us_per_turn": 200.0, "span_encode_us_per_turn": 50.0, "baseline_cpu_us_per_request": 40.0,
        "telemetry_on_serving_cpu_us_per_turn": 260.0, "telemetry_off_serving_cpu_us_per_turn": 200.0,
    }
    assert floors(res) == {
        "telemetry_overhead_cpu_floor_ratio": 1.25,
        "turn_vs_baseline_cpu_ceiling_ratio": 0.16,
        "telemetry_serving_cpu_us_per_turn": 60.0,
    }
    assert floors({"telemetry_off_cpu_us_per_turn": 200.0, "span_encode_us_per_turn": 50.0}) == {
        "telemetry_overhead_cpu_floor_ratio": 1.25,
    }
    assert floors({"span_encode_us_per_turn": 50.0}) == {}


def test_the_postgresql_ceiling_is_the_rate_the_cores_allow_at_the_cpu_measured() -> None:
    """Two cores, 400 µs of replica and 100 µs of database CPU a turn: at most 4,000 turns/s,
    half the SQLite server's 8,000; no ceiling without the database's CPU."""
    res = {
        "postgres_one_replica_cpu_us_per_turn": 400.0, "postgres_one_replica_database_cpu_us_per_turn": 100.0,
        "postgres_sqlite_turn_rps": 8000.0,
    }
    assert floors(res, cores=2) == {"postgres_one_replica_vs_sqlite_ceiling_ratio": 0.5}
    assert floors({**res, "postgres_one_replica_database_cpu_us_per_turn": None}, cores=2) == {}


def test_a_target_its_bound_misses_too_is_reported_beyond_bound() -> None:
    """A ratio that misses its target reads "MISSED, beyond bound" when its bound on the run's
    machine (the floor or ceiling :func:`floors` computed) misses it too, plain "MISSED" when the
    bound would meet it or is unknown; the table prints the verdict on the figure's line."""
    res = {"telemetry_overhead_cpu_ratio": 1.31, "telemetry_overhead_cpu_floor_ratio": 1.22,
           "turn_vs_baseline_cpu_ratio": 0.09, "turn_vs_baseline_cpu_ceiling_ratio": 0.16,
           "postgres_one_replica_vs_sqlite_ratio": 0.54, "fixed_rate_p99_ms": 4.2, "seconds": 8}
    assert verdict(res, "telemetry_overhead_cpu_ratio") == "MISSED, beyond bound"
    assert verdict(res, "turn_vs_baseline_cpu_ratio") == "MISSED"
    assert verdict(res, "postgres_one_replica_vs_sqlite_ratio") == "MISSED"
    assert verdict(res, "fixed_rate_p99_ms") == "ok"
    assert verdict(res, "seconds") == ""
    assert verdict({**res, "postgres_one_replica_vs_sqlite_ceiling_ratio": 0.66},
                   "postgres_one_replica_vs_sqlite_ratio") == "MISSED, beyond bound"
    line = next(row for row in table(res).splitlines() if row.startswith("telemetry_overhead_cpu_ratio "))
    assert line.endswith("≤ 1.20  MISSED, beyond bound")
