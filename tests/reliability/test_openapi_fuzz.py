"""The OpenAPI document covers every public route, and a bounded schemathesis run against it
through the ASGI app finds no server error and no response outside the documented schema."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from service.config import load_settings
from service.http.app import create_app
from service.http.openapi import document
from tests.support import STORE_TABLES, row_counts

schemathesis = pytest.importorskip("schemathesis")

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
    ("POST", "/api/conversations"),
    ("POST", "/api/conversations/{conv_id}/messages"), ("GET", "/api/conversations/{conv_id}"),
    ("GET", "/api/stats/bookings"), ("GET", "/api/diagnose"), ("POST", "/vapi/chat/completions"),
    ("POST", "/vapi/events"), ("GET", "/healthz"), ("GET", "/readyz"),
]


# Examples per operation; RDV_FUZZ_EXAMPLES=1000 for a deeper local run. The figures of each
# run (cases, 5xx, state changes by refused requests) are written to the file named by
# RDV_FUZZ_REPORT when it is set.
EXAMPLES = int(os.environ.get("RDV_FUZZ_EXAMPLES", "30"))


# Operations that take no input have no schema-violating request to make.
WITHOUT_INPUT = {("POST", "/api/conversations"), ("GET", "/healthz"), ("GET", "/readyz")}
CASES = [(m, p, "positive") for m, p in OPERATIONS] + [
    (m, p, "negative") for m, p in OPERATIONS if (m, p) not in WITHOUT_INPUT
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_api_conforms_to_its_document(tmp_path: Path, method: str, path: str, mode: str) -> None:
    """Generated valid and invalid requests for each operation: never a 5xx, always the
    documented status, content type and body (schemathesis' checks, through the ASGI app);
    requests outside the document (negative mode) are refused with a documented 4xx; and a
    refused request leaves every table of the store as it was."""
    from hypothesis import given
    from schemathesis import GenerationMode
    from schemathesis.python.asgi import shutdown_lifespans
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    app = quiet_app(tmp_path)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    database = tmp_path / "rdv.sqlite3"
    figures = {"cases": 0, "server_errors": 0, "refused": 0, "refused_state_changes": 0}
    try:
        operation = schema[path][method]

        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: Any) -> None:
            before = row_counts(database) if database.exists() else dict.fromkeys(STORE_TABLES, 0)
            # A schema cannot say "a valid French phone number" or "a known call": a
            # schema-valid request may still get a (documented) 422, which is correct.
            response = case.call(headers=AUTH_HEADERS)
            figures["cases"] += 1
            figures["server_errors"] += response.status_code >= 500
            if 400 <= response.status_code < 500:
                figures["refused"] += 1
                if database.exists() and row_counts(database) != before:
                    figures["refused_state_changes"] += 1
                    raise AssertionError(f"refused with {response.status_code} but the store changed")
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
    finally:
        shutdown_lifespans()
        report = os.environ.get("RDV_FUZZ_REPORT")
        if report:
            with open(report, "a", encoding="utf-8") as out:
                out.write(json.dumps({"operation": f"{method} {path}", "mode": mode, **figures}) + "\n")
    assert figures["server_errors"] == 0 and figures["refused_state_changes"] == 0, figures
