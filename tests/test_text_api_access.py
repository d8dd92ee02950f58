"""The text API cannot reach Vapi calls, is off in production unless turned on, and then
tells a trusted back end (its own key: chosen ids, verified phone) from an anonymous client
(server-issued ids only, phone not trusted); in development without a key it works as the
README shows."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import row_counts
from tests.vapi.conftest import VapiCall

PHONE = "+33612345678"
BOOK = "bonjour je voudrais prendre rendez-vous"
STRONG = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
TEXT_KEY = "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a"
PRODUCTION = {
    "RDV_ENV": "production", "RDV_VAPI_LLM_KEY": "llm-key-1", "RDV_VAPI_SECRET": "server-secret-1",
    "RDV_TRACE_SECRET": STRONG, "RDV_OPERATOR_TOKEN": "operator-token-1",
}
WITH_TEXT_API = {**PRODUCTION, "RDV_TEXT_API": "on", "RDV_TEXT_API_KEY": TEXT_KEY}
OPERATOR = {"Authorization": "Bearer operator-token-1"}
TRUSTED = {"Authorization": f"Bearer {TEXT_KEY}"}


def messages(conv_id: str) -> str:
    """The text-API turn route of ``conv_id``."""
    return f"/api/conversations/{conv_id}/messages"


async def test_text_api_cannot_move_a_vapi_call(make_live: Any, tmp_path: Path) -> None:
    """A text message addressed to a Vapi call's id is 404 and the call is untouched."""
    async with make_live() as live:
        call = VapiCall(live.client, "call-text")
        await call.say(BOOK)
        before = row_counts(tmp_path / "rdv.sqlite3")
        timeline = (await live.client.get("/api/conversations/call-text")).json()
        response = await live.client.post(messages("call-text"), json={"text": "Jean Dupont", "caller_phone": PHONE})
        assert response.status_code == 404, response.text
        assert "Vapi" in response.json()["error"]
        assert row_counts(tmp_path / "rdv.sqlite3") == before
        assert (await live.client.get("/api/conversations/call-text")).json() == timeline
        assert (await call.say("Jean Dupont")).text  # the call itself goes on


@pytest.mark.parametrize("env", [{}, WITH_TEXT_API], ids=["development", "production"])
async def test_uuid_shaped_ids_belong_to_vapi(make_live: Any, tmp_path: Path, env: dict[str, str]) -> None:
    """An id shaped like a Vapi call id (a UUID) is never created through the text API, even
    by a trusted back end, so no future call can land on a text conversation."""
    async with make_live(env) as live:
        response = await live.client.post(messages(str(uuid.uuid4())), json={"text": BOOK},
                                          headers=TRUSTED if env else {})
        assert response.status_code == 404, response.text
        assert row_counts(tmp_path / "rdv.sqlite3")["conversations"] == 0


async def test_production_text_api_is_off_by_default(make_live: Any, tmp_path: Path) -> None:
    """RDV_ENV=production without RDV_TEXT_API=on: both text routes answer 404."""
    async with make_live(PRODUCTION) as live:
        assert (await live.client.post("/api/conversations")).status_code == 404
        response = await live.client.post(messages("conv_prod"), json={"text": BOOK}, headers=TRUSTED)
        assert response.status_code == 404 and "RDV_TEXT_API" in response.json()["error"]
        assert row_counts(tmp_path / "rdv.sqlite3")["conversations"] == 0


async def test_anonymous_clients_get_server_issued_ids_and_no_trusted_phone(make_live: Any, tmp_path: Path) -> None:
    """Without the key: POST /api/conversations issues an unguessable id (201) that works;
    client-chosen or forged ids are 403 and store nothing; a caller_phone is not taken as the
    caller id (the stored conversation has none, and it is asked for before booking)."""
    async with make_live(WITH_TEXT_API) as live:
        issued = await live.client.post("/api/conversations")
        assert issued.status_code == 201, issued.text
        conv_id = issued.json()["conv_id"]
        assert re.fullmatch(r"txt_[0-9a-f]{64}", conv_id)
        assert (await live.client.post("/api/conversations")).json()["conv_id"] != conv_id
        for text in (BOOK, "Jean Dupont", "pas de préférence"):
            answer = await live.client.post(messages(conv_id), json={"text": text, "caller_phone": PHONE})
            assert answer.status_code == 200, answer.text
        booked = await live.client.post(messages(conv_id), json={"text": "le premier", "caller_phone": PHONE})
        assert booked.json()["state"] == "QUALIF_PHONE", booked.json()
        stored = (await live.client.get(f"/api/conversations/{conv_id}", headers=OPERATOR)).json()
        assert stored["caller_phone"] is None
        before = row_counts(tmp_path / "rdv.sqlite3")
        forged = "txt_" + "0" * 64
        for chosen in ("conv_mine", forged, conv_id[:-1] + ("0" if conv_id[-1] != "0" else "1")):
            refused = await live.client.post(messages(chosen), json={"text": BOOK})
            assert refused.status_code == 403, refused.text
            assert "POST /api/conversations" in refused.json()["error"]
        assert row_counts(tmp_path / "rdv.sqlite3") == before


async def test_trusted_back_end_chooses_ids_and_its_phone_is_verified(make_live: Any, tmp_path: Path) -> None:
    """With the key: a chosen id works and its caller_phone is the caller id; a wrong key is
    401 and stores nothing."""
    async with make_live(WITH_TEXT_API) as live:
        answer = await live.client.post(messages("conv_widget_1"), json={"text": BOOK, "caller_phone": PHONE},
                                        headers=TRUSTED)
        assert answer.status_code == 200, answer.text
        stored = (await live.client.get("/api/conversations/conv_widget_1", headers=OPERATOR)).json()
        assert stored["caller_phone"] == PHONE
        before = row_counts(tmp_path / "rdv.sqlite3")
        wrong = await live.client.post(messages("conv_widget_2"), json={"text": BOOK},
                                       headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "RDV_TEXT_API_KEY" in wrong.json()["error"]
        assert (await live.client.post("/api/conversations",
                                       headers={"Authorization": "Bearer nope"})).status_code == 401
        assert row_counts(tmp_path / "rdv.sqlite3") == before


async def test_development_without_a_key_works_as_the_readme_shows(make_live: Any) -> None:
    """No key in development: the README's conv_demo example runs (chosen id, phone taken as
    the caller id), and server-issued ids are available too."""
    async with make_live() as live:
        first = await live.say("conv_demo", BOOK, caller_phone=PHONE)
        assert first["state"] == "QUALIF_NAME"
        await live.say("conv_demo", "Jean Dupont")
        await live.say("conv_demo", "pas de préférence")
        assert (await live.say("conv_demo", "le premier"))["state"] == "CONFIRMED"
        issued = await live.client.post("/api/conversations")
        assert issued.status_code == 201
        assert (await live.say(issued.json()["conv_id"], BOOK))["state"] == "QUALIF_NAME"
