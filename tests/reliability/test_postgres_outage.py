"""A PostgreSQL restart (every connection of the service terminated by the server) never
gives a 500: turns answer 200 or a clean 503, and the service recovers by itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.reliability.callers import BOOK, PHONE
from tests.reliability.conftest import kill_connections

pytestmark = pytest.mark.postgres


async def test_connections_killed_by_the_server_recover(make_live: Any, postgres_url: str) -> None:
    """After the server kills the pool's connections, each next turn is 200 or 503 with
    Retry-After, readiness comes back, and the conversation continues to a booking."""
    async with make_live({"RDV_DATABASE_URL": postgres_url}) as live:
        texts = iter([BOOK, "Jean Dupont", "pas de préférence", "le premier"])
        text = next(texts)
        answers = []
        for round_ in range(12):
            if round_ % 3 == 0:
                assert await kill_connections(postgres_url) >= 0
            response = await live.client.post(
                "/api/conversations/conv_pg_restart/messages",
                json={"text": text, "caller_phone": PHONE, "request_id": f"k-{text}"},
            )
            assert response.status_code in (200, 503), (response.status_code, response.text)
            if response.status_code == 503:
                assert "retry-after" in response.headers and "error" in response.json()
                await asyncio.sleep(0.1)
                continue
            answers.append(response.json())
            text = next(texts, None)
            if text is None:
                break
        assert [a["state"] for a in answers] == ["QUALIF_NAME", "QUALIF_PREF", "WAIT_CONFIRM", "CONFIRMED"]
        ready = [(await live.client.get("/readyz")).status_code for _ in range(3)]
        assert ready[-1] == 200, ready
