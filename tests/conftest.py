"""Shared fixtures: the example practice, per-channel limits, a fixed clock and a live app."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.clock import FixedClock
from service.config import Settings, load_practice, load_settings
from service.engine.model import Limits
from service.engine.practice import Practice
from service.engine.states import Channel
from tests.support import NOW


@pytest.fixture(scope="session")
def practice() -> Practice:
    """The bundled example practice."""
    return load_practice(None)


@pytest.fixture
def text_limits() -> Limits:
    """Default limits of the text channel."""
    return load_settings({}).limits[Channel.TEXT]


@pytest.fixture
def voice_limits() -> Limits:
    """Default limits of the voice channel."""
    return load_settings({}).limits[Channel.VOICE]


@pytest.fixture
def clock() -> FixedClock:
    """A clock fixed on a Tuesday morning, Paris time."""
    return FixedClock(NOW)


class Live:
    """A running app (lifespan entered) with an HTTP client, its log output and services."""

    def __init__(self, app: Any, client: httpx.AsyncClient, logs: io.StringIO) -> None:
        self.app = app
        self.client = client
        self.logs = logs

    @property
    def services(self) -> Any:
        """The app's services container."""
        return self.app.state.services

    async def say(self, conv_id: str, text: str, **extra: Any) -> dict[str, Any]:
        """Send one text-API turn and return the JSON answer (asserting 200)."""
        response = await self.client.post(
            f"/api/conversations/{conv_id}/messages", json={"text": text, **extra}
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


LiveFactory = Callable[..., Any]


@pytest.fixture
def make_live(tmp_path: Path, clock: FixedClock) -> Callable[..., Any]:
    """Build a live app on a real SQLite file in ``tmp_path``; use as ``async with make_live() as live``."""
    import contextlib

    from service.http.app import create_app
    from telemetry import Telemetry

    @contextlib.asynccontextmanager
    async def factory(env: dict[str, str] | None = None, **kwargs: Any) -> AsyncIterator[Live]:
        settings: Settings = load_settings({"RDV_DATA_DIR": str(tmp_path), **(env or {})})
        logs = io.StringIO()
        telemetry = kwargs.pop("telemetry", None) or Telemetry.create(
            log_format=settings.log_format,
            log_pii=settings.log_pii,
            trace_secret=b"test-secret",
            version="test",
            log_stream=logs,
        )
        app = create_app(settings, clock=kwargs.pop("clock", clock), telemetry=telemetry, reaper=False, **kwargs)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://rdv.test") as client:
                yield Live(app, client, logs)

    return factory
