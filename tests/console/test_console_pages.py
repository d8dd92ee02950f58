"""The console's pages read the same answers as the JSON operator routes: the overview is
``/api/stats/bookings``, the list filters the stats' facts, a conversation is its timeline,
the not-understood inbox is the stored recovery events with the callers' words masked."""

from __future__ import annotations

import asyncio
import html
import json
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from service import stats
from service.console import french
from tests.console.conftest import BOOK, CALL_ID, PHONE, TOKEN, scripted_call

AUTH = {"authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]


def stat_values(page: str) -> dict[str, str]:
    """The ``data-stat`` figures of the overview page."""
    return {k: html.unescape(v) for k, v in re.findall(r'data-stat="(\w+)">([^<]*)<', page)}


def listed(page: str) -> list[str]:
    """Conversation ids of the list page, in order."""
    return re.findall(r'<tr data-conv="([^"]+)"', page)


async def some_calls(live: Any) -> None:
    """The scripted Vapi call, a text chat stuck at the phone number, one that asked for a
    human, and one still at the name."""
    await scripted_call(live.client)
    for text in (BOOK, "Jean Dupont", "pas de préférence", "le premier", "mon numéro c'est le 06 12 34"):
        await live.say("chat-phone", text)
    await live.say("chat-human", BOOK)
    await live.say("chat-human", "je veux parler à quelqu'un")
    await live.say("chat-name", BOOK)
    await live.say("chat-name", "euh")


async def test_overview_figures_are_the_stats_answer_for_both_periods(console_live: Callable[..., Any]) -> None:
    """Today's and the week's figures are what ``/api/stats/bookings`` answers for the same
    conversations (all made just now), formatted in French."""
    async with console_live() as (live, _):
        await some_calls(live)
        api = (await live.client.get("/api/stats/bookings?window=7d", headers=AUTH)).json()
        assert api["total_sessions"] == 4
        for period in ("today", "7d"):
            page = (await live.client.get(f"/console/?period={period}")).text
            assert stat_values(page) == {
                "conversion_rate": french.percent(api["conversion_rate"]),
                "total_sessions": str(api["total_sessions"]),
                "confirmed_bookings": str(api["confirmed_bookings"]),
                "transferred": str(api["transferred"]),
                "intent_router": str(api["intent_router"]),
                "abandon_rate": french.percent(api["abandon_rate"]),
            }, period


async def test_target_table_comes_from_the_stats_declaration(console_live: Callable[..., Any]) -> None:
    """One row per ``stats.TARGETS`` entry, in order, its threshold from the declaration and
    its colour from the stats' own verdict; the actions are the manual's (French) words."""
    async with console_live() as (live, _):
        await some_calls(live)
        page = (await live.client.get("/console/?period=7d")).text
        api = (await live.client.get("/api/stats/bookings?window=7d", headers=AUTH)).json()
        rows = re.findall(r'<tr class="target target-(\w+)" data-target="(\w+)">(.*?)</tr>', page, re.DOTALL)
        assert [key for _, key, _ in rows] == [t.key for t in stats.TARGETS]
        for (status, key, body), target, answer in zip(rows, stats.TARGETS, api["targets"], strict=True):
            assert html.escape(f"{target.comparison} {french.percent(target.threshold * 100)}") in body
            assert status == ("none" if answer["meets"] is None else "ok" if answer["meets"] else "bad")
            assert html.escape(french.TARGETS[key].action) in body


@pytest.mark.parametrize(("query", "expected"), [
    ("outcome=confirmed", {CALL_ID}),
    ("outcome=transferred", {"chat-human"}),
    ("outcome=in_progress", {"chat-phone", "chat-name"}),
    ("state=QUALIF_PHONE", {"chat-phone"}),
    ("channel=voice", {CALL_ID}),
    ("channel=text&state=QUALIF_NAME", {"chat-name"}),
    ("q=chat", {"chat-phone", "chat-human", "chat-name"}),
    (f"phone={PHONE[-4:]}", {CALL_ID}),
    ("phone=06 12 34 56 78", {CALL_ID}),
    ("phone=0000", set()),
])
async def test_the_list_filters_the_stats_facts(
    console_live: Callable[..., Any], query: str, expected: set[str]
) -> None:
    """Each filter (outcome, state, channel, id, the caller number's last digits) keeps
    exactly the conversations it names."""
    async with console_live() as (live, _):
        await some_calls(live)
        response = await live.client.get(f"/console/conversations?period=7d&{query}")
        assert response.status_code == 200, response.text
        assert set(listed(response.text)) == expected, response.text[-3000:]


async def test_the_day_filter_and_bad_filters(console_live: Callable[..., Any]) -> None:
    """A past day lists that day only; an unknown value is ignored with a message (422)."""
    async with console_live() as (live, clock):
        await some_calls(live)
        today = clock.now().astimezone(live.services.practice.timezone).date()
        page = (await live.client.get(f"/console/conversations?day={today.isoformat()}")).text
        assert len(listed(page)) == 4
        yesterday = (today - timedelta(days=1)).isoformat()
        assert listed((await live.client.get(f"/console/conversations?day={yesterday}")).text) == []
        bad = await live.client.get("/console/conversations?outcome=lost&day=2020-01-01&phone=abc")
        assert bad.status_code == 422
        assert "résultat « lost » inconnu" in html.unescape(bad.text) and len(listed(bad.text)) == 4


async def test_an_exact_id_opens_the_conversation(console_live: Callable[..., Any]) -> None:
    """Searching a whole conversation id goes straight to it, whatever its age."""
    async with console_live() as (live, _):
        await some_calls(live)
        response = await live.client.get(f"/console/conversations?q={CALL_ID}")
        assert response.status_code == 303 and response.headers["location"] == f"/console/conversations/{CALL_ID}"
        missing = await live.client.get("/console/conversations/nobody")
        assert missing.status_code == 404 and "introuvable" in missing.text


async def test_a_conversation_page_is_its_timeline(console_live: Callable[..., Any]) -> None:
    """Turns in order with words, replies and states; the barge-in, the booking, the slot
    message length, Vapi's end, the trace link; recovery prompts of a chat."""
    async with console_live() as (live, _):
        await some_calls(live)
        timeline = (await live.client.get(f"/api/conversations/{CALL_ID}", headers=AUTH)).json()
        page = html.unescape((await live.client.get(f"/console/conversations/{CALL_ID}")).text)
        said = re.findall(r'<div class="msg caller">.*?<p>(.*?)</p>', page, re.DOTALL)
        assert said == [t["text"] for t in timeline["turns"]]
        assert re.findall(r"data-state-after>(\w+)<", page) == [t["state_after"] for t in timeline["turns"]]
        assert "a coupé la parole" in page and "Interruption : créneau n°2" in page
        assert "Réservation réussie" in page and "Jean Dupont" in page
        length = next(e["data"]["length"] for e in timeline["events"] if e["kind"] == "SlotsSent")
        assert f"{length} car." in page
        assert "assistant-ended-call" in page and "1 min 35 s" in page
        assert f'href="{timeline["trace_url"]}"' in page
        chat = html.unescape((await live.client.get("/console/conversations/chat-phone")).text)
        assert "Relance : téléphone non compris (tentative 1)" in chat
        assert "data-live-conv" in chat  # no outcome yet: the page refreshes itself


async def test_the_inbox_groups_misses_and_masks_them(console_live: Callable[..., Any]) -> None:
    """Misses grouped by state and field, the callers' digits and names hidden."""
    async with console_live() as (live, _):
        await some_calls(live)
        page = html.unescape((await live.client.get("/console/misses?period=7d")).text)
        assert 'data-group="QUALIF_PHONE/phone"' in page and 'data-group="QUALIF_NAME/filler"' in page
        assert "mon numéro c'est le ## ## ##" in page
        assert "06 12 34" not in page and "Dupont" not in page


async def test_the_export_is_rdv_understand_input(console_live: Callable[..., Any]) -> None:
    """One JSON object per line (task ``turn``, the state asked in, the local time), accepted
    as is by ``rdv understand``."""
    async with console_live() as (live, _):
        await some_calls(live)
        response = await live.client.get("/console/misses.jsonl?period=7d")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert "attachment" in response.headers["content-disposition"]
        lines = [json.loads(line) for line in response.text.splitlines()]
        states = {line["context"]["state"] for line in lines}
        assert {"QUALIF_PHONE", "QUALIF_NAME"} <= states
        assert all(line["task"] == "turn" and line["expected"] is None for line in lines)
        assert not any("06 12 34" in line["text"] for line in lines)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service.cli", "understand", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(response.text.encode()), 120)
    assert proc.returncode == 0, err.decode()
    answers = out.decode().splitlines()
    assert len(answers) == len(lines) and all("predicted" in json.loads(answer) for answer in answers)


async def test_live_answers_say_when_to_refresh(console_live: Callable[..., Any]) -> None:
    """A conversation's stamp changes with its next turn; ``since`` says whether anything moved."""
    async with console_live() as (live, clock):
        await live.say("chat-live", BOOK)
        first = (await live.client.get("/console/live.json?conv=chat-live")).json()
        assert first["live"] is True
        since = clock.advance(seconds=5).isoformat()
        quiet = (await live.client.get("/console/live.json", params={"since": since})).json()
        assert quiet == {"changed": False, "live": 1}
        clock.advance(seconds=5)
        await live.say("chat-live", "Jean Dupont")
        assert (await live.client.get("/console/live.json?conv=chat-live")).json()["stamp"] != first["stamp"]
        moved = (await live.client.get("/console/live.json", params={"since": since})).json()
        assert moved["changed"] is True
        assert (await live.client.get("/console/live.json?since=yesterday")).status_code == 422
