"""Timelines read without the operator token (``RDV_LOG_PII=false``) show no name, no free
text and no dictated number, in turns, events, bookings or Vapi's end-of-call report; the
token, or RDV_LOG_PII=true, shows them whole."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vapi.conftest import EVENTS, VapiCall, call_object

BOOK = "bonjour je voudrais prendre rendez-vous"
DICTATED = "mon numéro c'est le 06 12 34 56 78"
SECRETS = ("Jean", "Dupont", "jean", "dupont", "12 34 56", "0612345678", "612345678", "rec.wav")
REPORT = {
    "type": "end-of-call-report", "endedReason": "customer-ended-call", "cost": 0.1,
    "analysis": {"summary": "Jean Dupont a pris rendez-vous, rappel au 06 12 34 56 78."},
    "artifact": {
        "transcript": "AI: Bonjour\nUser: c'est Jean Dupont, le 06 12 34 56 78",
        "messages": [{"role": "bot", "message": "Bonjour"}, {"role": "user", "message": "c'est Jean Dupont"}],
        "recordingUrl": "https://storage.vapi.ai/rec.wav",
    },
}


async def two_conversations(live: Any) -> None:
    """A text booking whose caller dictates the number, and a Vapi call with its report."""
    for text in (BOOK, "Jean Dupont", "pas de préférence", "le premier", DICTATED):
        await live.say("conv_pii", text)
    call = VapiCall(live.client, "call-pii", number=None)
    await call.say(BOOK)
    await call.say("Jean Dupont")
    response = await live.client.post(EVENTS, json={"message": {**REPORT, "call": call_object("call-pii", None)}})
    assert response.status_code == 200


async def timelines(live: Any, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Both conversations' timelines as read with ``headers``."""
    out = []
    for conv_id in ("conv_pii", "call-pii"):
        response = await live.client.get(f"/api/conversations/{conv_id}", headers=headers or {})
        assert response.status_code == 200, response.text
        out.append(response.json())
    return out


async def test_timelines_without_the_token_mask_names_free_text_and_numbers(make_live: Any) -> None:
    """No name, spoken number or recording link anywhere; the assistant's own wording and the
    shape of what the caller said (word lengths) remain."""
    async with make_live() as live:
        await two_conversations(live)
        text, call = await timelines(live)
    for timeline in (text, call):
        dumped = json.dumps(timeline, ensure_ascii=False)
        for secret in SECRETS:
            assert secret not in dumped, (secret, timeline["conv_id"])
    said = [t["text"] for t in text["turns"]]
    assert said[1] == "J*** D*****" and said[4] == "m** n***** c'e** l* ** ** ** ** **"
    assert text["turns"][-1]["reply"].startswith("C'est noté : mardi 3 mars à 11h, au nom de J*** D*****.")
    assert "Voici ce que je vous propose" in text["turns"][2]["reply"]
    report = call["call_report"]
    assert report["summary"] == "J*** D***** a p*** r*****-v***, r***** a* ** ** ** ** **."
    assert report["recordingUrl"] == "[masked]" and report["endedReason"] == "customer-ended-call"
    assert [m["message"] for m in report["messages"]] == ["B******", "c'e** J*** D*****"]


@pytest.mark.parametrize(
    ("env", "headers"),
    [({"RDV_LOG_PII": "true"}, None), ({"RDV_OPERATOR_TOKEN": "op-secret"}, {"Authorization": "Bearer op-secret"})],
    ids=["log-pii", "operator-token"],
)
async def test_the_token_or_log_pii_shows_everything(
    make_live: Any, env: dict[str, str], headers: dict[str, str] | None
) -> None:
    """With the operator token, or RDV_LOG_PII=true, timelines are whole."""
    async with make_live(env) as live:
        await two_conversations(live)
        text, call = await timelines(live, headers)
        if headers:
            assert (await live.client.get("/api/conversations/conv_pii")).status_code == 401
    assert text["turns"][4]["text"] == DICTATED
    assert "Jean Dupont" in call["call_report"]["summary"]
    assert call["call_report"]["recordingUrl"] == "https://storage.vapi.ai/rec.wav"


async def test_a_patients_name_is_masked_like_the_callers(make_live: Any) -> None:
    """An appointment for someone else: the patient's name is masked in turns, replies and
    events like the caller's own, before anything is booked under it and after."""
    async with make_live() as live:
        for text in (BOOK, "Jean Dupont", "c'est pour ma fille Inès Brossard", "pas de préférence"):
            answer = await live.say("conv_patient", text, caller_phone="+33612345678")
        assert answer["state"] == "WAIT_CONFIRM", answer
        choosing = (await live.client.get("/api/conversations/conv_patient")).json()
        answer = await live.say("conv_patient", "le premier", caller_phone="+33612345678")
        assert answer["state"] == "CONFIRMED" and "Inès Brossard" in answer["reply"], answer
        booked = (await live.client.get("/api/conversations/conv_patient")).json()
    for timeline in (choosing, booked):
        dumped = json.dumps(timeline, ensure_ascii=False)
        for secret in ("Inès", "Brossard", "Jean", "Dupont"):
            assert secret not in dumped, (secret, timeline["state"])
