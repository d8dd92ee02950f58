"""Firing alerts, asked of Alertmanager (``RDV_ALERTMANAGER_URL``) when the overview is drawn.

Only active alerts that are neither silenced nor inhibited are shown (the 70 % warning is
inhibited while the 50 % page fires, as the routing says), without the always-firing
watchdog. Alertmanager being down is said on the page; it never fails the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx

from telemetry.alerts import SEVERITY_NONE, SEVERITY_PAGE, WATCHDOG

TIMEOUT_SECONDS: Final = 2.0
QUERY: Final = {"active": "true", "silenced": "false", "inhibited": "false"}


@dataclass(frozen=True, slots=True)
class Alert:
    """One firing alert as the page shows it."""

    name: str
    severity: str
    summary: str
    since: datetime | None
    runbook: str | None

    @property
    def page(self) -> bool:
        """True for the paging (critical) severity."""
        return self.severity == SEVERITY_PAGE


@dataclass(frozen=True, slots=True)
class Alerts:
    """What Alertmanager answered: the alerts, or why there are none to show."""

    configured: bool
    alerts: tuple[Alert, ...] = ()
    error: str | None = None


def _alert(raw: Any, tz: ZoneInfo) -> Alert | None:
    if not isinstance(raw, dict):
        return None
    raw_labels, raw_notes = raw.get("labels"), raw.get("annotations")
    labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}
    notes: dict[str, Any] = raw_notes if isinstance(raw_notes, dict) else {}
    name = str(labels.get("alertname", "?"))
    severity = str(labels.get("severity", ""))
    if name == WATCHDOG or severity == SEVERITY_NONE:
        return None
    since: datetime | None = None
    try:
        since = datetime.fromisoformat(str(raw.get("startsAt", ""))).astimezone(tz)
    except ValueError:
        since = None
    summary = str(notes.get("summary") or notes.get("description") or "")
    runbook = notes.get("runbook_url")
    return Alert(name, severity, summary, since, str(runbook) if runbook else None)


async def firing(url: str | None, tz: ZoneInfo, timeout: float = TIMEOUT_SECONDS) -> Alerts:
    """The firing alerts of the Alertmanager at ``url`` (API v2), most severe first."""
    if not url:
        return Alerts(configured=False)
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(f"{url}/api/v2/alerts", params=QUERY)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Alerts(configured=True, error=f"Alertmanager injoignable ({type(exc).__name__})")
    if not isinstance(body, list):
        return Alerts(configured=True, error="réponse d'Alertmanager illisible")
    found = [a for a in (_alert(raw, tz) for raw in body) if a is not None]
    found.sort(key=lambda a: (not a.page, a.name))
    return Alerts(configured=True, alerts=tuple(found))
