"""The OpenAPI document covers every public route, and a bounded schemathesis run against it
through the ASGI app finds no server error and no response outside the documented schema."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")

from service.config import load_settings  # noqa: E402
from service.http.app import create_app  # noqa: E402
from service.http.openapi import document  # noqa: E402

# Routes that are not part of the documented public interface.
UNDOCUMENTED = {"/openapi.json", "/metrics"}


def quiet_app(tmp_path: Path) -> Any:
    """The service on a fresh SQLite file, its logs kept out of the test output."""
    from telemetry import Telemetry

    cfg = load_settings({"RDV_DATA_DIR": str(tmp_path)})
    telemetry = Telemetry.create(
        log_format="text", log_pii=False, trace_secret=b"test-secret", version="test", log_stream=io.StringIO()
    )
    return create_app(cfg, telemetry=telemetry, reaper=False)


def test_document_covers_every_route(tmp_path: Path) -> None:
    """Every route the app serves (adapters and operator answers included) is in /openapi.json."""
    app = quiet_app(tmp_path)
    documented = set(document()["paths"])
    routed = {getattr(r, "path", "") for r in app.routes} - UNDOCUMENTED
    assert routed <= documented, f"undocumented routes: {sorted(routed - documented)}"


@pytest.fixture
def api_schema(tmp_path: Path) -> Iterator[Any]:
    """The schema as the running app serves it (lifespan started by schemathesis)."""
    from schemathesis.python.asgi import shutdown_lifespans

    app = quiet_app(tmp_path)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    shutdown_lifespans()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_document(case: Any) -> None:
    """Generated valid and invalid requests: never a 5xx, always the documented status, type
    and body."""
    case.call_and_validate()
