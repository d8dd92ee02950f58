"""The console in a real browser: Debian's Chromium, driven by Playwright, against a real
``rdv serve`` process on 127.0.0.1 whose conversations were made through the Vapi endpoint
(a week of ``rdv simulate`` callers, then one scripted call). Each page is also saved as a
screenshot at a laptop and a phone width (``RDV_SCREENSHOTS_DIR``, default ``screenshots/``)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.clock import FixedClock
from service.config import load_settings
from service.console import french
from service.http.app import create_app
from telemetry import Telemetry
from tests.console.conftest import CALL_ID, PHONE, TOKEN, scripted_call, week_of_calls
from tests.reliability.procs import Replica
from tests.support import free_port
from tests.vapi.conftest import VapiCall

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RDV_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("RDV_SCREENSHOTS_DIR") or ROOT / "screenshots")
SIZES = {1280: 800, 390: 844}
LIVE_CALL = "call-console-live"
TIMEOUT_MS = 15_000


class TraceUi:
    """A stand-in for the trace UI (Jaeger's ``/trace/<id>``) in a thread, on a free port."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"<!doctype html><title>trace</title><h1 id='trace'>{self.path}</h1>".encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


async def _history(data_dir: Path) -> None:
    """A week of simulated Vapi calls written by the real turn loop into ``data_dir``."""
    now = datetime.now(UTC)
    clock = FixedClock(now)
    settings = load_settings({"RDV_DATA_DIR": str(data_dir)})
    telemetry = Telemetry.create(log_format="text", log_pii=False, trace_secret=b"t", version="test",
                                 log_stream=io.StringIO())
    app = create_app(settings, clock=clock, telemetry=telemetry, reaper=False)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                   base_url="http://rdv.test") as c:
        await week_of_calls(c, clock, now, french_tz())


async def _calls(url: str) -> None:
    """The scripted call (ended) and a call still going on, through the server's Vapi endpoint."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await scripted_call(client)
        live = VapiCall(client, LIVE_CALL, number="+33698765432")
        await live.say("bonjour je voudrais prendre rendez-vous")


def run(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to its end in a thread of its own (Playwright's sync API holds an
    event loop in this one)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the HTTP client thread did not finish"
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def trace_ui() -> Iterator[TraceUi]:
    """The trace UI stand-in."""
    ui = TraceUi()
    yield ui
    ui.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, trace_ui: TraceUi) -> Iterator[Replica]:
    """``rdv serve`` with the console on, a week of history and the scripted calls."""
    tmp = tmp_path_factory.mktemp("console-browser")
    (tmp / "data").mkdir()
    run(lambda: _history(tmp / "data"))
    replica = Replica("console", tmp, {
        "RDV_OPERATOR_TOKEN": TOKEN, "RDV_TRACE_UI_URL": trace_ui.url, "RDV_REAPER_INTERVAL_SECONDS": "3600",
    })
    replica.start()
    try:
        run(lambda: _calls(replica.url))
        yield replica
    finally:
        replica.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} required on CI (Debian package chromium; `make test-deps` installs it)")
        pytest.skip(f"{CHROMIUM} not installed (Debian package chromium; `make test-deps` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--lang=fr-FR"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def operator(server: Replica, browser: Any) -> dict[str, Any]:
    """The storage state (session cookie) of an operator who logged in with the keyboard."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    page.goto(f"{server.url}/console/conversations?period=7d")
    assert "/console/login" in page.url
    shots(page, "login")
    page.keyboard.type("not-the-token")  # the token field has the focus
    page.keyboard.press("Enter")
    page.get_by_role("alert").wait_for()
    assert "Jeton incorrect" in page.get_by_role("alert").inner_text()
    page.get_by_label("Jeton opérateur").fill(TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console/conversations\?period=7d$"))
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


def shots(page: Any, name: str) -> None:
    """Full-page screenshots of ``page`` at each width, then back to the first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def api(server: Replica, path: str) -> Any:
    """An operator JSON answer of the server."""
    response = httpx.get(f"{server.url}{path}", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def open_page(browser: Any, operator: dict[str, Any], url: str) -> Any:
    """A logged-in page at ``url``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, storage_state=operator, locale="fr-FR")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(url)
    return page


def test_overview_shows_the_numbers_of_the_stats_api(server: Replica, browser: Any, operator: dict[str, Any]) -> None:
    """The 7-day overview's figures and target table are ``/api/stats/bookings?window=7d``'s."""
    page = open_page(browser, operator, f"{server.url}/console/")
    page.get_by_role("link", name="7 jours").click()
    page.wait_for_url(re.compile(r"period=7d"))
    expected = api(server, "/api/stats/bookings?window=7d")
    assert expected["total_sessions"] > 30
    shown = {el.get_attribute("data-stat"): el.inner_text() for el in page.locator("[data-stat]").all()}
    assert shown == {
        "conversion_rate": french.percent(expected["conversion_rate"]),
        "total_sessions": str(expected["total_sessions"]),
        "confirmed_bookings": str(expected["confirmed_bookings"]),
        "transferred": str(expected["transferred"]),
        "intent_router": str(expected["intent_router"]),
        "abandon_rate": french.percent(expected["abandon_rate"]),
    }
    for target in expected["targets"]:
        row = page.locator(f"[data-target={target['key']}]")
        status = "none" if target["meets"] is None else ("ok" if target["meets"] else "bad")
        assert f"target-{status}" in (row.get_attribute("class") or "")
        assert f"{target['count']}/{target['of']}" in row.inner_text()
    assert page.locator("svg[role=img] path.line").count() >= 1
    shots(page, "overview")
    page.context.close()


def test_a_vapi_call_reads_as_a_chat_with_states_booking_and_trace_link(
    server: Replica, browser: Any, operator: dict[str, Any], trace_ui: TraceUi
) -> None:
    """Searching the call id opens it: each turn's words, reply and state, the barge-in, the
    booking won, the slot message's length, Vapi's ended reason and duration; the trace link
    leads to the trace UI at the conversation's trace id."""
    page = open_page(browser, operator, f"{server.url}/console/conversations")
    page.get_by_label("Identifiant").fill(CALL_ID)
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url(re.compile(f"/console/conversations/{CALL_ID}$"))
    timeline = api(server, f"/api/conversations/{CALL_ID}")
    turns = page.locator("li.turn")
    assert turns.count() == len(timeline["turns"]) == 5
    for i, turn in enumerate(timeline["turns"]):
        item = turns.nth(i)
        assert item.locator(".caller p").inner_text() == turn["text"]
        assert item.locator(".assistant p").inner_text() == turn["reply"].strip()
        assert item.locator("[data-state-after]").inner_text() == turn["state_after"]
    last = turns.nth(4)
    assert "a coupé la parole" in last.inner_text()
    assert "Interruption : créneau n°2" in last.inner_text()
    assert "réussie" in page.locator("[data-attempts]").inner_text()
    assert "Jean Dupont" in page.get_by_role("heading", name="Réservation").locator("..").inner_text()
    length = next(e["data"]["length"] for e in timeline["events"] if e["kind"] == "SlotsSent")
    assert f"{length} car." in page.locator("[data-slot-lengths]").inner_text()
    assert page.locator("[data-ended-reason]").inner_text() == "assistant-ended-call"
    assert page.locator("[data-duration]").inner_text() == "1 min 35 s"
    assert page.locator("[data-outcome]").inner_text() == "confirmé"
    shots(page, "conversation")
    page.locator("[data-trace-link]").click()
    page.wait_for_url(f"{trace_ui.url}/trace/{timeline['trace_id']}")
    assert page.locator("#trace").inner_text() == f"/trace/{timeline['trace_id']}"
    page.context.close()


def test_the_list_filters_by_outcome_state_channel_day_and_phone_digits(
    server: Replica, browser: Any, operator: dict[str, Any]
) -> None:
    """Filtering the 7-day list by outcome gives the overview's count; the last digits of a
    caller's number find their call; a state and a day narrow the list."""
    expected = api(server, "/api/stats/bookings?window=7d")
    page = open_page(browser, operator, f"{server.url}/console/conversations?period=7d")
    shots(page, "conversations")
    page.get_by_label("Résultat").select_option("confirmed")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url(re.compile(r"outcome=confirmed"))
    pills = page.locator("table.list tbody .pill")
    assert pills.count() == expected["confirmed_bookings"]
    assert set(pills.all_inner_texts()) == {"confirmé"}
    page.get_by_label("Résultat").select_option("")
    page.get_by_label("Fin du numéro").fill(PHONE[-4:])
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url(re.compile(r"phone="))
    ids = page.locator("table.list tbody tr").evaluate_all("rows => rows.map(r => r.dataset.conv)")
    assert CALL_ID in ids and LIVE_CALL not in ids
    page.get_by_label("Fin du numéro").fill("")
    page.get_by_label("État d'arrêt").select_option("QUALIF_NAME")
    page.get_by_label("Jour").fill(datetime.now(UTC).astimezone(french_tz()).date().isoformat())
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url(re.compile(r"state=QUALIF_NAME"))
    ids = page.locator("table.list tbody tr").evaluate_all("rows => rows.map(r => r.dataset.conv)")
    assert LIVE_CALL in ids and CALL_ID not in ids
    page.context.close()


def french_tz() -> Any:
    """The example practice's time zone."""
    from service.config import load_practice

    return load_practice(None).timezone


def test_the_not_understood_inbox_masks_and_exports_for_rdv_understand(
    server: Replica, browser: Any, operator: dict[str, Any], tmp_path: Path
) -> None:
    """Misses grouped by state and field, examples masked; the download is ``rdv understand``
    input, one JSON object per line with no phone number in it."""
    page = open_page(browser, operator, f"{server.url}/console/misses?period=7d")
    assert page.locator("table.misses tbody tr").count() >= 2
    assert page.locator("[data-group='QUALIF_NAME/filler']").count() == 1
    shots(page, "misses")
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Télécharger")).click()
    target = tmp_path / "misses.jsonl"
    info.value.save_as(target)
    lines = [json.loads(line) for line in target.read_text("utf-8").splitlines()]
    assert lines and all(set(line) == {"task", "text", "context", "expected"} for line in lines)
    assert all(line["task"] == "turn" and line["expected"] is None for line in lines)
    assert all(datetime.fromisoformat(line["context"]["now"]).tzinfo is not None for line in lines)
    assert not any(re.search(r"\d{2}[ .]?\d{2}[ .]?\d{2}[ .]?\d{2}", line["text"]) for line in lines)
    page.context.close()


def test_a_live_conversation_page_refreshes_itself(server: Replica, browser: Any, operator: dict[str, Any]) -> None:
    """While a call goes on, its page shows the caller's next turn without a reload by hand."""
    page = open_page(browser, operator, f"{server.url}/console/conversations/{LIVE_CALL}")
    assert page.locator("li.turn").count() == 1
    assert page.locator("[data-live-conv]").count() == 1

    async def next_turn() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            call = VapiCall(client, LIVE_CALL, number="+33698765432")
            await call.say("bonjour je voudrais prendre rendez-vous")
            await call.say("Marie Curie")

    run(next_turn)
    page.locator("li.turn").nth(1).wait_for(timeout=TIMEOUT_MS)
    assert "Marie Curie" in page.locator("li.turn").nth(1).inner_text()
    page.context.close()


def test_without_the_token_no_page_or_data_shows(server: Replica, browser: Any) -> None:
    """A browser with no session lands on the login form from every page; the data answers
    it fetches are refused."""
    context = browser.new_context()
    page = context.new_page()
    for path in ("/console/", "/console/?period=7d", "/console/conversations", f"/console/conversations/{CALL_ID}",
                 "/console/misses"):
        page.goto(f"{server.url}{path}")
        assert "/console/login" in page.url, path
        assert "Jean Dupont" not in page.content() and page.locator("[data-stat], li.turn, table").count() == 0
    for path in ("/console/misses.jsonl", f"/console/live.json?conv={CALL_ID}", "/api/stats/bookings"):
        assert context.request.get(f"{server.url}{path}").status == 401, path
    assert context.request.get(f"{server.url}/console/static/console.css").status == 200
    context.close()


def test_screenshots_were_written_for_every_page() -> None:
    """Each page at both widths is in the screenshots folder (what ``make screenshots`` copies)."""
    for name in ("login", "overview", "conversation", "conversations", "misses"):
        for width in SIZES:
            assert (SCREENSHOTS / f"{name}-{width}.png").stat().st_size > 5000, (name, width)
    assert shutil.which("true")  # the folder is outside git: see .gitignore
