"""The OpenAPI document covers every public route, and a bounded schemathesis run against it
through the ASGI app finds no server error and no response outside the documented schema."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")

from service.config import load_settings
from service.http.app import create_app
from service.http.openapi import document

# Routes that are not part of the documented public interface.
UNDOCUMENTED = {"/openapi.json", "/metrics"}


# Vapi credentials configured, so the documented security is enforced (and checked).
CREDENTIALS = {"RDV_VAPI_LLM_KEY": "llm-key", "RDV_VAPI_SECRET": "server-secret"}
AUTH_HEADERS = {"Authorization": "Bearer llm-key", "X-Vapi-Secret": "server-secret"}


def quiet_app(tmp_path: Path) -> Any:
    """The service on a fresh SQLite file, its logs kept out of the test output."""
    from telemetry import Telemetry

    cfg = load_settings({"RDV_DATA_DIR": str(tmp_path), **CREDENTIALS})
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


OPERATIONS = [
    ("POST", "/api/conversations/{conv_id}/messages"), ("GET", "/api/conversations/{conv_id}"),
    ("GET", "/api/stats/bookings"), ("GET", "/api/diagnose"), ("POST", "/vapi/chat/completions"),
    ("POST", "/vapi/events"), ("GET", "/healthz"), ("GET", "/readyz"),
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_api_conforms_to_its_document(tmp_path: Path, method: str, path: str) -> None:
    """Generated valid and invalid requests for each operation: never a 5xx, always the
    documented status, content type and body (schemathesis' checks, through the ASGI app)."""
    from hypothesis import given
    from schemathesis.python.asgi import shutdown_lifespans
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    app = quiet_app(tmp_path)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        operation = schema[path][method]

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: Any) -> None:
            # A schema cannot say "a valid French phone number" or "a known call": a
            # schema-valid request may still get a (documented) 422, which is correct.
            case.call_and_validate(headers=AUTH_HEADERS, excluded_checks=[positive_data_acceptance])

        check()
    finally:
        shutdown_lifespans()
