"""A running server keeps what callers said (their words, names, numbers), memoized for
speed, for a bounded time: the reaper empties the memos every ``MEMO_SECONDS``."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx

from service.clock import FixedClock
from service.config import load_settings
from service.engine.nlu.normalize import analyse
from service.http.app import MEMO_SECONDS, create_app
from service.phones import _e164
from telemetry import Telemetry
from tests.support import NOW


async def test_the_reaper_empties_the_memos_of_what_callers_said(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    settings = load_settings({"RDV_DATA_DIR": str(tmp_path), "RDV_REAPER_INTERVAL_SECONDS": "1"})
    telemetry = Telemetry.create(trace_secret=b"test", version="test", log_stream=io.StringIO())
    app = create_app(settings, clock=clock, telemetry=telemetry, reaper=True)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://rdv.test"
    ) as client:
        for text in ("bonjour je voudrais prendre rendez-vous", "je m'appelle Jeanne Martinez"):
            answer = await client.post("/api/conversations/conv_memo/messages",
                                       json={"text": text, "caller_phone": "+33612345678"})
            assert answer.status_code == 200
        assert analyse.cache_info().currsize > 0 and _e164.cache_info().currsize > 0
        await asyncio.sleep(1.5)  # a reaper pass, the memos younger than MEMO_SECONDS: kept
        assert analyse.cache_info().currsize > 0 and _e164.cache_info().currsize > 0
        clock.advance(seconds=MEMO_SECONDS)
        for _ in range(50):
            if analyse.cache_info().currsize == 0 and _e164.cache_info().currsize == 0:
                break
            await asyncio.sleep(0.1)
        assert analyse.cache_info().currsize == 0 and _e164.cache_info().currsize == 0
