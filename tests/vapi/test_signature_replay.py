"""HMAC-signed server messages: a timestamp that is not a plain decimal number never passes,
a signature is accepted once (also across two replicas on one store), and the text API's
``Idempotency-Key`` header follows ``request_id``'s rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import NOW, row_counts
from tests.vapi.conftest import EVENTS, VapiCall, event
from tests.vapi.test_events import signed

BOOK = "bonjour je voudrais prendre rendez-vous"
HMAC = {"RDV_VAPI_SECRET": "s3cret", "RDV_VAPI_AUTH": "hmac"}


def ended(call_id: str) -> bytes:
    """The ``status-update`` ended message of ``call_id``, as bytes."""
    return json.dumps(event("status-update", call_id, status="ended", endedReason="customer-ended-call")).encode()


def headers(body: bytes, timestamp: str) -> dict[str, str]:
    """A correctly signed request's headers for ``timestamp``."""
    return {"content-type": "application/json", "x-timestamp": timestamp,
            "x-signature": signed(body, "s3cret", timestamp)}


@pytest.mark.parametrize("timestamp", ["nan", "NaN", "inf", "-inf", "infinity", "1e3", "0x10", "", " ", "12:00"])
async def test_a_timestamp_that_is_not_a_decimal_number_is_refused(make_live: Any, timestamp: str) -> None:
    """A correctly signed message whose timestamp is NaN, infinite or not a plain number is
    401, and the call stays open."""
    async with make_live(HMAC) as live:
        await VapiCall(live.client, "call-nan").say(BOOK)
        body = ended("call-nan")
        response = await live.client.post(EVENTS, content=body, headers=headers(body, timestamp))
        assert response.status_code == 401, response.text
        assert (await live.client.get("/api/conversations/call-nan")).json()["outcome"] is None


async def test_a_replayed_signature_is_refused(make_live: Any, tmp_path: Path) -> None:
    """The same signed message sent twice: the first is acted on, the replay is 401 and
    writes nothing; in seconds or milliseconds, hex or base64, it is the same signature."""
    async with make_live(HMAC) as live:
        await VapiCall(live.client, "call-replay").say(BOOK)
        body = json.dumps(event("user-interrupted", "call-replay")).encode()
        stamp = str(int(NOW.timestamp() * 1000))
        first = await live.client.post(EVENTS, content=body, headers=headers(body, stamp))
        assert first.status_code == 200, first.text
        before = row_counts(tmp_path / "rdv.sqlite3")
        timeline = (await live.client.get("/api/conversations/call-replay")).json()
        again = headers(body, stamp)
        for presented in (again["x-signature"], "sha256=" + again["x-signature"],
                          signed(body, "s3cret", stamp, "base64")):
            replay = await live.client.post(EVENTS, content=body, headers={**again, "x-signature": presented})
            assert replay.status_code == 401 and "replay" in replay.json()["error"], replay.text
        assert row_counts(tmp_path / "rdv.sqlite3") == before
        assert (await live.client.get("/api/conversations/call-replay")).json() == timeline
        fresh = str(int(NOW.timestamp() * 1000) + 1)
        assert (await live.client.post(EVENTS, content=body, headers=headers(body, fresh))).status_code == 200


async def test_two_replicas_share_the_signatures_they_accepted(make_live: Any) -> None:
    """A message accepted by one replica is a replay for another on the same store."""
    async with make_live(HMAC) as first, make_live(HMAC) as second:
        await VapiCall(first.client, "call-two").say(BOOK)
        body = ended("call-two")
        signed_headers = headers(body, str(int(NOW.timestamp())))
        assert (await first.client.post(EVENTS, content=body, headers=signed_headers)).status_code == 200
        replay = await second.client.post(EVENTS, content=body, headers=signed_headers)
        assert replay.status_code == 401, replay.text


@pytest.mark.parametrize("key", ["k" * 201, "clé-1", "a\tb"], ids=["too-long", "not-ascii", "control"])
async def test_a_bad_idempotency_key_header_is_400(make_live: Any, tmp_path: Path, key: str) -> None:
    """An ``Idempotency-Key`` longer than 200 characters or outside printable ASCII is 400,
    like a bad ``request_id``, and nothing is stored."""
    async with make_live() as live:
        await live.say("conv_idem_h", BOOK)
        before = row_counts(tmp_path / "rdv.sqlite3")
        response = await live.client.post(
            "/api/conversations/conv_idem_h/messages", json={"text": "Jean Dupont"},
            headers=[(b"Idempotency-Key", key.encode("utf-8"))],
        )
        assert response.status_code == 400, response.text
        assert "Idempotency-Key" in response.json()["error"]
        assert row_counts(tmp_path / "rdv.sqlite3") == before
