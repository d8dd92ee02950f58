"""Hostile or broken Vapi requests (truncated JSON, wrong types, huge strings, unknown fields,
wrong call ids, missing messages) get a 4xx or a 200 that does nothing, never a 5xx; every
refused request leaves the store exactly as it was."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("service.vapi.routes", reason="the Vapi adapter is not available")

from service.config import load_settings
from service.http.app import create_app

CHAT = "/vapi/chat/completions"
EVENTS = "/vapi/events"
CALL_ID = "call-fuzz-known"


def chat_payload(call_id: str = CALL_ID, text: str = "je voudrais un rendez-vous") -> dict[str, Any]:
    """A well-formed custom-LLM request as Vapi sends it."""
    return {
        "model": "rdv-fr-1",
        "messages": [
            {"role": "system", "content": "Tu es l'assistante vocale du cabinet."},
            {"role": "assistant", "content": "Bonjour, cabinet du docteur Martin."},
            {"role": "user", "content": text},
        ],
        "stream": True,
        "call": {"id": call_id, "type": "inboundPhoneCall", "customer": {"number": "+33612345678"}},
        "customer": {"number": "+33612345678"},
    }


def event_payload(kind: str, call_id: str = CALL_ID) -> dict[str, Any]:
    """A well-formed server message of type ``kind``."""
    message: dict[str, Any] = {"type": kind, "timestamp": 1767261602000, "call": {"id": call_id}}
    if kind == "status-update":
        message.update(status="ended", endedReason="customer-ended-call")
    if kind == "end-of-call-report":
        message.update(
            endedReason="customer-ended-call", startedAt="2026-01-01T10:00:00Z", endedAt="2026-01-01T10:02:00Z",
            cost=0.12, artifact={"messages": [], "transcript": ""},
        )
    if kind == "tool-calls":
        message["toolCallList"] = [{"id": "call_1", "type": "function",
                                    "function": {"name": "bookAppointment", "arguments": "{}"}}]
    if kind == "speech-update":
        message.update(role="user", status="started", turn=1)
    return {"message": message}


EVENT_KINDS = [
    "status-update", "end-of-call-report", "user-interrupted", "speech-update", "hang",
    "tool-calls", "transfer-destination-request", "conversation-update", "transcript", "no-such-type",
]

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
HUGE = st.integers(min_value=10_000, max_value=120_000).map(lambda n: "é" * n)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths_of(v, (*prefix, i))
    return out


def set_at(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    """A copy of ``doc`` with ``path`` replaced by ``value`` (or removed); a path that no
    longer leads anywhere (an earlier mutation replaced its parent) leaves ``doc`` as it is."""
    doc = json.loads(json.dumps(doc))
    target = doc
    for key in path[:-1]:
        if (isinstance(target, dict) and key in target) or (isinstance(target, list) and isinstance(key, int)
                                                            and key < len(target)):
            target = target[key]
        else:
            return doc
    last = path[-1]
    if isinstance(target, list):
        if not isinstance(last, int) or last >= len(target):
            return doc if delete else [*target, value] if target is doc else doc
        if delete:
            del target[last]
        else:
            target[last] = value
    elif isinstance(target, dict):
        if delete:
            target.pop(last, None)
        else:
            target[last] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A path and a request body: a valid payload broken in one or two ways."""
    path = draw(st.sampled_from([CHAT, EVENTS]))
    call_id = draw(st.sampled_from([CALL_ID, "call-unknown", "", "x" * 300, "../../etc"]))
    doc: Any = chat_payload(call_id) if path == CHAT else event_payload(draw(st.sampled_from(EVENT_KINDS)), call_id)
    for _ in range(draw(st.integers(1, 2))):
        where = draw(st.sampled_from(paths_of(doc) or [("extra",)]))
        how = draw(st.sampled_from(["junk", "huge", "delete", "unknown"]))
        if how == "junk":
            doc = set_at(doc, where, draw(JUNK))
        elif how == "huge":
            doc = set_at(doc, where, draw(HUGE))
        elif how == "delete":
            doc = set_at(doc, where, None, delete=True)
        else:
            doc = set_at(doc, (*where[:-1], draw(st.text(min_size=1, max_size=12))), draw(JUNK)) if isinstance(
                doc, dict) else doc
    raw = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()
    shape = draw(st.sampled_from(["whole", "truncated", "not-an-object", "garbage"]))
    if shape == "truncated":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif shape == "not-an-object":
        raw = json.dumps(draw(JUNK)).encode()
    elif shape == "garbage":
        raw = draw(st.binary(max_size=200))
    return path, raw


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the SQLite file."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}  # type: ignore[misc]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def vapi_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """A live app (lifespan started) on a SQLite file with one known call, and that file."""
    from starlette.testclient import TestClient

    from telemetry import Telemetry

    tmp = tmp_path_factory.mktemp("vapi_fuzz")
    cfg = load_settings({"RDV_DATA_DIR": str(tmp)})
    telemetry = Telemetry.create(
        log_format="text", log_pii=False, trace_secret=b"test-secret", version="test", log_stream=io.StringIO()
    )
    app = create_app(cfg, telemetry=telemetry, reaper=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        known = client.post(CHAT, json=chat_payload())
        assert known.status_code == 200, known.text
        dbs = [p for p in tmp.rglob("*") if p.suffix in (".db", ".sqlite", ".sqlite3")]
        assert len(dbs) == 1, dbs
        yield client, dbs[0]


def check_stream(body: str) -> None:
    """A custom-LLM answer: SSE chunks that all carry ``choices``, ended by ``[DONE]``."""
    events = [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", body
    for chunk in events[:-1]:
        assert isinstance(json.loads(chunk)["choices"], list), chunk


@given(request=mutated())
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_broken_vapi_requests_never_5xx_and_refusals_change_nothing(
    vapi_client: tuple[Any, Path], request: tuple[str, bytes]
) -> None:
    """Each broken request: 4xx with a JSON error and the store untouched, or 200 well-formed."""
    client, db = vapi_client
    path, raw = request
    before = dump(db)
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code < 500, (path, raw[:300], response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert "error" in response.json(), response.text
        assert dump(db) == before, (path, raw[:300], response.status_code)
    elif path == CHAT and response.headers.get("content-type", "").startswith("text/event-stream"):
        check_stream(response.text)
