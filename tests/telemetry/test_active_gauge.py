"""The active-conversations gauge across replicas: a Prometheus ``sum()`` over every replica's
``/metrics`` counts each active conversation once (one replica reports the store's count, the
others 0)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.conftest import fresh_schema
from tests.telemetry.conftest import BOOK, PHONE, Captured

GAUGE = "rdv_active_conversations"


async def scraped(live: Any) -> dict[str, float]:
    """The gauge's value per channel in one scrape of ``live``'s /metrics."""
    response = await live.client.get("/metrics")
    assert response.status_code == 200
    return {
        sample.labels["channel"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == GAUGE
    }


async def summed(*replicas: Any) -> dict[str, float]:
    """What ``sum by (channel) (rdv_active_conversations)`` gives over the replicas' last scrapes."""
    total: dict[str, float] = {}
    for replica in replicas:
        for channel, value in (await scraped(replica)).items():
            total[channel] = total.get(channel, 0) + value
    return total


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The replicas' shared store: one SQLite file (the default), or one PostgreSQL schema."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_schema() as url:
        yield {"RDV_DATABASE_URL": url}


async def test_sum_over_two_replicas_counts_each_conversation_once(
    make_live: Any, clock: Any, store_env: dict[str, str],
) -> None:
    """Two app instances on one store, three conversations started on either: the sum of their
    gauges is 3 whichever is scraped first, the store says 3, and exactly one instance reports a
    non-zero count; ending one brings the sum to 2."""
    first, second = Captured(), Captured()
    async with make_live(store_env, telemetry=first.telemetry) as a, \
            make_live(store_env, telemetry=second.telemetry) as b:
        for i, replica in enumerate((a, b, a)):
            await replica.say(f"conv_active_{i}", BOOK, caller_phone=PHONE)
        assert await a.services.store.active_counts() == {"text": 3}
        for order in ((a, b), (b, a), (a, b)):
            assert await summed(*order) == {"text": 3.0, "voice": 0.0}
        reports = [await scraped(a), await scraped(b)]
        assert sorted(r["text"] for r in reports) == [0.0, 3.0]
        await b.say("conv_active_1", "au revoir, je rappellerai", caller_phone=PHONE)
        await b.services.turns.end_call("conv_active_1", "customer-ended-call")
        assert await a.services.store.active_counts() == {"text": 2}
        assert await summed(b, a) == {"text": 2.0, "voice": 0.0}


async def test_the_count_moves_to_another_replica_when_the_holder_stops_being_scraped(
    make_live: Any, clock: Any,
) -> None:
    """The holder's lease runs out when it is no longer scraped (it stopped): the next replica
    scraped takes over the count, so the sum over the replicas still scraped is right."""
    first, second = Captured(), Captured()
    async with make_live(telemetry=first.telemetry) as a, make_live(telemetry=second.telemetry) as b:
        await a.say("conv_handover", BOOK, caller_phone=PHONE)
        assert (await scraped(a))["text"] == 1.0
        assert (await scraped(b))["text"] == 0.0
        clock.advance(minutes=3)
        assert (await scraped(b))["text"] == 1.0
        assert (await scraped(a))["text"] == 0.0
