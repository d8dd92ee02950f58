"""``GET /api/stats/bookings`` over real conversations: the seed's numbers, counted right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.operator.conftest import BOOK, PHONE, independent_counts, run_simulation, to_slots

EVERY_KIND = "cooperative=6,hesitant=3,rejects=3,bad_phone=3,faq=3,interrupts=2,hangs_up=2,racer=4"
SEED_FIELDS = ("total_sessions", "confirmed_bookings", "transferred", "intent_router", "conversion_rate",
               "abandon_rate")


def target(payload: dict[str, Any], key: str) -> dict[str, Any]:
    """One row of the target table."""
    return next(t for t in payload["targets"] if t["key"] == key)


async def test_stats_match_counts_taken_from_the_tables(make_live: Any, tmp_path: Path) -> None:
    """After 26 simulated calls of every kind, each number equals the one counted from SQLite
    directly, and the bookings equal the confirmations the callers heard."""
    async with make_live({"RDV_SLOT_HOLD_SECONDS": "0"}) as live:  # holds off: racers must be offered the same slots
        summary = await run_simulation(live, EVERY_KIND, 26)
        # And one caller left in the fallback menu (twice not understood at the greeting).
        await live.say("conv_menu", "je sais pas")
        assert (await live.say("conv_menu", "je sais pas trop"))["state"] == "INTENT_ROUTER"
        answer = await live.client.get("/api/stats/bookings")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    want = independent_counts(tmp_path)
    assert summary["errors"] == 0 and summary["calls"] == 26
    for name in (*SEED_FIELDS, "abandoned", "abandoned_by_state", "ended_reasons"):
        assert got[name] == want[name], name
    assert got["window"] == "24h"
    assert got["confirmed_bookings"] == summary["bookings"] > 0
    assert got["transferred"] >= summary["by_behaviour"]["bad_phone"]["transferred"] == 3
    assert got["total_sessions"] == 27 and got["intent_router"] == 1
    for key, counted in (("slot_taken_rate", "slot_taken"), ("long_slot_message_rate", "long_slots"),
                         ("phone_recovery_rate", "phone_recovery"), ("anti_loop_rate", "anti_loop")):
        row = target(got, key)
        assert (row["count"], row["of"]) == want[counted], key
    assert want["slot_taken"][0] >= 2, "the racers lost at least one race per pair"
    confirmation = target(got, "confirmation_rate")
    assert confirmation["value"] == got["conversion_rate"]
    assert confirmation["meets"] is (got["conversion_rate"] > 70)
    assert target(got, "phone_recovery_rate")["meets"] is False  # every withheld caller failed


async def test_vapi_calls_count_abandons_and_ended_reasons(make_live: Any, tmp_path: Path) -> None:
    """Through the Vapi interface, hang-ups are abandons (with the state they stopped in) and
    every call's end-of-call reason is counted."""
    pytest.importorskip("service.vapi.routes", reason="the Vapi adapter is not available")
    async with make_live() as live:
        summary = await run_simulation(live, "cooperative=4,hangs_up=4,bad_phone=2", 10, transport="vapi")
        got = (await live.client.get("/api/stats/bookings?window=1h")).json()
    want = independent_counts(tmp_path)
    assert summary["errors"] == 0
    assert got["abandoned"] == summary["outcomes"]["hung_up"] == 4
    assert sum(got["abandoned_by_state"].values()) == 4
    assert got["abandoned_by_state"] == want["abandoned_by_state"]
    assert got["abandon_rate"] == 40.0
    assert got["ended_reasons"] == want["ended_reasons"]
    assert got["ended_reasons"]["customer-ended-call"] == 4
    assert sum(got["ended_reasons"].values()) == 10


async def test_empty_window_is_zeros(make_live: Any) -> None:
    """No conversation: every count and rate is 0 and no target is judged."""
    async with make_live() as live:
        got = (await live.client.get("/api/stats/bookings")).json()
        diag = (await live.client.get("/api/diagnose")).json()
    for name in SEED_FIELDS:
        assert got[name] == 0, name
    assert got["abandoned_by_state"] == {} and got["ended_reasons"] == {}
    assert [t["meets"] for t in got["targets"]] == [None] * 5
    assert all(t["value"] == 0 for t in got["targets"])
    assert diag["summary"]["conversations"] == 0 and diag["dominant"] is None
    assert diag["conversations"] == [] and diag["causes"] == {}


async def test_window_counts_only_conversations_last_seen_in_it(make_live: Any, clock: Any) -> None:
    """A conversation last seen two hours ago is in the 24h window, not in the 1h one."""
    async with make_live() as live:
        await to_slots(live, "conv_old", caller_phone=PHONE)
        clock.advance(hours=2)
        await live.say("conv_new", BOOK, caller_phone=PHONE)
        hour = (await live.client.get("/api/stats/bookings?window=1h")).json()
        day = (await live.client.get("/api/stats/bookings?window=24h")).json()
        diag = (await live.client.get("/api/diagnose?window=1h")).json()
    assert hour["total_sessions"] == 1 and day["total_sessions"] == 2
    assert [c["conv_id"] for c in diag["conversations"]] == ["conv_new"]
    assert hour["window"] == "1h" and hour["since"] < hour["until"]


@pytest.mark.parametrize("window", ["abc", "0h", "32d", "", "24", "1w", "-1h", "1.5h"])
@pytest.mark.parametrize("path", ["/api/stats/bookings", "/api/diagnose"])
async def test_bad_window_is_422_with_a_message(make_live: Any, path: str, window: str) -> None:
    """A window that is not a duration like 1h, 24h or 7d is refused, saying so."""
    async with make_live() as live:
        answer = await live.client.get(path, params={"window": window})
    assert answer.status_code == 422, answer.text
    assert "1h, 24h or 7d" in answer.json()["error"] or "31 days" in answer.json()["error"]


async def test_bad_limit_is_422(make_live: Any) -> None:
    """``/api/diagnose?limit=`` must be a whole number up to 1000."""
    async with make_live() as live:
        for bad in ("-1", "many", "1001"):
            answer = await live.client.get("/api/diagnose", params={"limit": bad})
            assert answer.status_code == 422, bad
        assert (await live.client.get("/api/diagnose?limit=0")).status_code == 200


@pytest.mark.parametrize("path", ["/api/stats/bookings", "/api/diagnose"])
async def test_operator_token_is_required_when_configured(make_live: Any, path: str) -> None:
    """With RDV_OPERATOR_TOKEN set, no token or a wrong one is 401; the right bearer is 200."""
    async with make_live({"RDV_OPERATOR_TOKEN": "op-secret"}) as live:
        await live.say("conv_tok", BOOK, caller_phone=PHONE)
        missing = await live.client.get(path)
        wrong = await live.client.get(path, headers={"Authorization": "Bearer nope"})
        right = await live.client.get(path, headers={"Authorization": "Bearer op-secret"})
    assert missing.status_code == wrong.status_code == 401
    assert "RDV_OPERATOR_TOKEN" in missing.json()["error"]
    assert right.status_code == 200
    body = right.json()
    assert body.get("total_sessions", body.get("summary", {}).get("conversations")) == 1
