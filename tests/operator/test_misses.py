"""The not-understood inbox: real conversations through the text API, read back over HTTP
(``GET /api/understanding/misses``), by ``rdv misses`` from a copied SQLite file, exported for
labelling and checked with ``rdv understand --check``."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from service import cli
from service.clock import FixedClock
from service.misses import mask_utterance
from tests.operator.conftest import BOOK, PHONE
from tests.support import NOW

TOKEN = "operator-secret-token"


async def talk(live: Any, clock: FixedClock, conv_id: str, *texts: str, phone: str | None = PHONE) -> None:
    """Text-API turns, 20 s apart."""
    for text in texts:
        extra = {"caller_phone": phone} if phone else {}
        await live.say(conv_id, text, **extra)
        clock.advance(seconds=20)


async def traffic(live: Any, clock: FixedClock) -> None:
    """A name not understood (then booked), a preference re-asked, a bad slot choice, a
    partial phone number said three times (transferred), and an opening twice not understood."""
    await talk(live, clock, "conv_name", BOOK, "je sais pas", "Jean Dupont", "bof", "le matin", "le premier")
    await talk(live, clock, "conv_choice", BOOK, "Marie Curie", "pas de préférence", "le cinquième", "oui",
               "le deuxième")
    await talk(live, clock, "conv_phone", BOOK, "Paul Martin", "le matin", "le premier",
               "06 12 34", "zéro six douze", "je ne sais plus", phone=None)
    await talk(live, clock, "conv_lost", "blabla", "tralala")


def group(inbox: dict[str, Any], state: str, field: str) -> dict[str, Any]:
    """The inbox group of ``state`` and ``field``."""
    found = [g for g in inbox["groups"] if g["state"] == state and g["field"] == field]
    assert len(found) == 1, inbox["groups"]
    return found[0]


async def test_inbox_groups_misses_with_shares_outcomes_and_masked_examples(make_live: Any, clock: FixedClock) -> None:
    """Every miss is grouped by state and field, with its share of the turns of that state, its
    reasons, the outcomes of its conversations and examples whose digits are masked; the metric
    counts them by state, field and reason."""
    async with make_live({"RDV_OPERATOR_TOKEN": TOKEN}) as live:
        await traffic(live, clock)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        response = await live.client.get("/api/understanding/misses", headers=auth)
        assert response.status_code == 200, response.text
        inbox = response.json()
        metrics = (await live.client.get("/metrics")).text

    assert inbox["masked"] is True
    name = group(inbox, "QUALIF_NAME", "name")
    assert (name["misses"], name["reasons"], name["outcomes"]) == (1, {"nothing_found": 1}, {"confirmed": 1})
    assert [e["text"] for e in name["examples"]] == ["je sais pas"]
    pref = group(inbox, "QUALIF_PREF", "preference")
    assert pref["misses"] == 1 and pref["turns"] == 4 and pref["share"] == 0.25
    choice = group(inbox, "WAIT_CONFIRM", "slot_choice")
    assert choice["reasons"] == {"nothing_found": 1, "ambiguous": 1} and choice["conversations"] == 1
    phone = group(inbox, "QUALIF_PHONE", "phone")
    assert (phone["misses"], phone["fallbacks"], phone["outcomes"]) == (3, 1, {"transferred": 1})
    assert "## ## ##" in [e["text"] for e in phone["examples"]]
    assert all("06" not in e["text"] and "six" not in e["text"] for e in phone["examples"])
    opening = group(inbox, "START", "intent")
    assert opening["misses"] == 2 and opening["fallbacks"] == 1 and opening["outcomes"] == {"active": 1}
    assert inbox["misses"] == 9 and inbox["turns"] == 21
    assert inbox["groups"][0]["field"] == "phone"  # the largest group first

    expected = ('rdv_understanding_misses_total{channel="text",field="phone",reason="nothing_found",'
                'state="QUALIF_PHONE"} 3.0')
    assert expected in metrics


async def test_unmasked_utterances_need_the_operator_token(make_live: Any, clock: FixedClock) -> None:
    """``pii=true`` shows the words as said with the token; without a configured token it is
    refused, and filters that name nothing known are a 422."""
    async with make_live({"RDV_OPERATOR_TOKEN": TOKEN}) as live:
        await traffic(live, clock)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        raw = (await live.client.get("/api/understanding/misses?pii=true&field=phone", headers=auth)).json()
        assert raw["masked"] is False and [g["field"] for g in raw["groups"]] == ["phone"]
        assert "06 12 34" in [e["text"] for e in raw["groups"][0]["examples"]]
        assert (await live.client.get("/api/understanding/misses?pii=true")).status_code == 401
        assert (await live.client.get("/api/understanding/misses?state=NOWHERE", headers=auth)).status_code == 422
        assert (await live.client.get("/api/understanding/misses?since=yesterday", headers=auth)).status_code == 422
    async with make_live() as live:
        assert (await live.client.get("/api/understanding/misses?pii=true")).status_code == 403
        assert (await live.client.get("/api/understanding/misses")).json()["masked"] is True


async def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``rdv <args>`` in process (on a thread: it runs its own event loop): exit code, stdout, stderr."""
    code = await asyncio.to_thread(cli.main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def test_cli_reads_a_copied_store_exports_and_checks_labels(
    make_live: Any, clock: FixedClock, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``rdv misses --database sqlite:///copy.db`` shows the inbox; ``--export`` writes ``rdv
    understand`` records with their context (state, local time, proposed slots); once labelled,
    ``rdv understand --check`` reports accuracy per task and field and exits 1 on a wrong answer."""
    async with make_live() as live:
        await traffic(live, clock)
    copy = tmp_path / "copy.db"
    shutil.copy(tmp_path / "rdv.sqlite3", copy)
    monkeypatch.setenv("RDV_DATA_DIR", str(tmp_path / "elsewhere"))
    window = ("--since", (NOW - timedelta(hours=1)).isoformat(), "--until", (NOW + timedelta(hours=1)).isoformat())
    code, out, _ = await run_cli(capsys, "misses", "--database", f"sqlite:///{copy}", *window)
    assert code == 0 and "9 of 21 caller turns not understood (42.9%)" in out, out
    assert "QUALIF_PHONE / phone: 3 of 3 turns (100.0%)" in out and "« ## ## ## »" in out

    export = tmp_path / "misses.jsonl"
    code, out, _ = await run_cli(capsys, "misses", "--database", f"sqlite:///{copy}", *window,
                           "--field", "slot_choice", "--export", str(export), "--json")
    assert code == 0 and json.loads(out)["exported"] == 2
    records = [json.loads(line) for line in export.read_text("utf-8").splitlines()]
    assert [r["text"] for r in records] == ["le cinquième", "oui"]
    first = records[0]
    assert first["task"] == "turn" and first["expected"] is None and first["context"]["state"] == "WAIT_CONFIRM"
    assert first["context"]["now"].endswith("+01:00") and len(first["context"]["slots"]) == 3
    assert {"start", "label"} <= set(first["context"]["slots"][0])

    code, out, _ = await run_cli(capsys, "understand", "--check", str(export))
    assert code == 0 and "0 labelled records (2 unlabelled" in out
    records[0]["expected"] = {"choice": None}  # what the understanding answers today: right
    records[1]["expected"] = {"choice": 0, "yes_no": "yes"}  # "oui" alone does not pick one: wrong
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    code, out, _ = await run_cli(capsys, "understand", "--check", str(labelled), "--json")
    report = json.loads(out)
    assert code == 1 and report["accuracy"] == 0.5 and report["tasks"]["turn"] == {
        "right": 1, "judged": 2, "accuracy": 0.5}
    assert report["turn_fields"]["choice"] == {"right": 1, "judged": 2, "accuracy": 0.5}
    assert report["turn_fields"]["yes_no"]["accuracy"] == 1.0
    assert [w["text"] for w in report["wrong"]] == ["oui"]


@pytest.mark.parametrize(
    ("text", "state", "names", "shown"),
    [
        ("je sais pas", "QUALIF_NAME", (), "je sais pas"),
        ("c'est Dupont, Jean Dupont", "QUALIF_NAME", (), "c'est D***, J*** D***"),
        ("Dupont", "QUALIF_NAME", (), "D***"),
        ("le zéro six douze", "QUALIF_PHONE", (), "le z*** s*** d***"),
        ("06 12 34 56 78", "WAIT_CONFIRM", (), "06 ** ** ** 78"),
        ("au 06 12 34", "WAIT_CONFIRM", (), "au ## ## ##"),
        ("plutôt mardi, demandez à Martine", "QUALIF_PREF", (), "plutôt mardi, demandez à M***"),
        ("Mardi ça ira pour madame durand", "WAIT_CONFIRM", ("Anne Durand",), "Mardi ça ira pour madame d***"),
    ],
)
def test_utterances_are_masked_like_the_logs(text: str, state: str, names: tuple[str, ...], shown: str) -> None:
    """Names (known, capitalised inside a sentence, or anything but dialogue where a name was
    asked) keep their first letter; digits become #, number words are hidden where a number was asked."""
    assert mask_utterance(text, state, names) == shown
