"""Firing alerts on the overview come from a real Alertmanager (``RDV_ALERTMANAGER_URL``),
configured with the repository's own routing: the page and the warning show, the watchdog
and an inhibited warning do not, and an Alertmanager that does not answer is said so."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from telemetry import alerts as a
from telemetry import generate as g
from tests.observability.conftest import tool
from tests.observability.stack import Proc, Webhook, wait_for
from tests.support import free_port


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """Alertmanager on a free local port with rdv's routing and inhibition rules."""
    binary = tool("prometheus-alertmanager")
    hook = Webhook()
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(g.render_alertmanager(a.AlertmanagerParams(
        pager_url=hook.url("/pager"), chat_url=hook.url("/chat"), deadman_url=hook.url("/deadman"),
    )), "utf-8")
    proc = Proc("alertmanager", [
        binary, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
    ], tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        proc.wait_ready(f"{url}/-/ready")
        yield url
    finally:
        proc.stop()
        hook.close()


def fire(url: str, name: str, severity: str, summary: str) -> None:
    """Post one firing alert, as Prometheus would."""
    body = [{"labels": {"alertname": name, "severity": severity, "channel": "voice"},
             "annotations": {"summary": summary}, "startsAt": datetime.now(UTC).isoformat()}]
    assert httpx.post(f"{url}/api/v2/alerts", json=body, timeout=5).status_code == 200


async def test_firing_alerts_show_on_the_overview(
    console_live: Callable[..., Any], alertmanager: str
) -> None:
    """The 50 % page and a warning are listed (page first); the watchdog and the 70 % warning
    it inhibits are not."""
    fire(alertmanager, a.WATCHDOG, a.SEVERITY_NONE, "always firing")
    fire(alertmanager, a.CONVERSION_PAGE, a.SEVERITY_PAGE, "Conversion below the 50 % floor on voice")
    fire(alertmanager, a.CONVERSION_WARNING, a.SEVERITY_WARNING, "Conversion below the 70 % target on voice")
    fire(alertmanager, "RdvSlotTakenHigh", a.SEVERITY_WARNING, "Slot taken above 5 % on voice")

    def inhibited() -> bool:
        answer = httpx.get(f"{alertmanager}/api/v2/alerts", params={"inhibited": "false"}, timeout=5).json()
        return len(answer) == 3

    wait_for("the 70 % warning to be inhibited", inhibited, timeout=20)
    async with console_live(RDV_ALERTMANAGER_URL=alertmanager) as (live, _):
        page = html.unescape((await live.client.get("/console/")).text)
    assert "Alertes en cours" in page
    assert page.index(a.CONVERSION_PAGE) < page.index("RdvSlotTakenHigh")
    assert "Conversion below the 50 % floor on voice" in page
    assert a.CONVERSION_WARNING not in page and a.WATCHDOG not in page


async def test_an_unreachable_alertmanager_is_said_not_fatal(console_live: Callable[..., Any]) -> None:
    """The overview still shows its figures, with a line saying Alertmanager did not answer."""
    async with console_live(RDV_ALERTMANAGER_URL=f"http://127.0.0.1:{free_port()}") as (live, _):
        response = await live.client.get("/console/")
    assert response.status_code == 200
    assert "Alertmanager injoignable" in response.text and 'data-stat="total_sessions"' in response.text


async def test_no_alert_section_without_an_alertmanager(console_live: Callable[..., Any]) -> None:
    """Without RDV_ALERTMANAGER_URL the overview does not pretend to know about alerts."""
    async with console_live() as (live, _):
        assert "Alertes en cours" not in (await live.client.get("/console/")).text
