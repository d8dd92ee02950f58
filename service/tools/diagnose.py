"""``rdv diagnose``: the seed's diagnosis checklist, automated.

For every conversation of the window: final state, turns and the cause of a lost booking;
the final states of non-confirmed conversations; the dominant failure pattern with the
action and the constant the seed recommends; the seed's target table. Three sources:

* ``--url URL``: ask a running service (``GET /api/diagnose``, operator token if set);
* ``--store`` (default): open the store of ``RDV_DATABASE_URL`` / ``RDV_DATA_DIR`` directly;
* ``--logs FILE``: read a log file of the seed's format (this service's text or JSON lines,
  or an older engine's), ``-`` for stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from service import stats
from service.config import Settings, build_limits, load_settings
from service.engine.model import Limits
from service.engine.states import Channel
from service.storage import SQLITE_FILE, open_store
from service.storage.base import EventRecord
from service.tools.transport import ToolError, add_source_options, check_url, secret_of
from telemetry import names as n

DEFAULT_LIMIT = 20


def _until(raw: str | None) -> datetime:
    if raw is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ToolError(f"--until {raw!r} is not an ISO time like 2026-03-03T09:00:00+01:00") from None
    if moment.tzinfo is None:
        raise ToolError(f"--until {raw!r} needs a time zone (Z or +01:00)")
    return moment


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite file the settings point at (None for PostgreSQL)."""
    url = settings.database_url
    if url is None:
        return settings.data_dir / SQLITE_FILE
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    if url == "memory:":
        raise ToolError("RDV_DATABASE_URL=memory: keeps nothing to diagnose; use --url or --logs")
    return None


async def from_store(settings: Settings, window: stats.Window, until: datetime, limit: int) -> dict[str, Any]:
    """The diagnosis read directly from the service's store."""
    path = sqlite_path(settings)
    if path is not None and not path.is_file():
        raise ToolError(f"no SQLite store at {path} (set RDV_DATA_DIR or RDV_DATABASE_URL)")
    store = open_store(settings.database_url, settings.data_dir)
    await store.open()
    try:
        since = window.since(until)
        rows = [r for r in await store.conversations_seen_since(since) if r["last_seen_at"] <= until]
        events: list[EventRecord] = []
        if rows:
            events = await store.events_since(stats.events_since(rows, since), stats.EVENT_KINDS)
    finally:
        await store.close()
    host = (settings.database_url or "").rsplit("@", 1)[-1]
    where = f"SQLite {path.resolve()}" if path is not None else f"PostgreSQL {host}"
    facts = stats.facts_from_store(rows, events)
    return stats.diagnose(facts, window, until, source=f"store {where}", limits=settings.limits, limit=limit)


def from_logs(
    path: str, window: stats.Window | None, until: datetime, limit: int, limits: Mapping[Channel, Limits]
) -> dict[str, Any]:
    """The diagnosis of a log file (all of it, or the timestamped lines of the window); the
    changes to try are built from ``limits``, the settings of this environment."""
    since = window.since(until) if window else None
    try:
        if path == "-":
            facts = stats.facts_from_log(sys.stdin, since)
        else:
            with open(path, encoding="utf-8", errors="replace") as lines:
                facts = stats.facts_from_log(lines, since)
    except OSError as exc:
        raise ToolError(f"--logs {path}: {exc.strerror or exc}") from None
    if not facts:
        print(
            f"warning: {'standard input' if path == '-' else path} holds no rdv log line "
            f"(looked for {n.LOG_FLOW}, {n.LOG_STATE_CHANGE}, {n.LOG_RDV_CONFIRMED}, … in text or JSON lines)",
            file=sys.stderr,
        )
    return stats.diagnose(
        facts, window, until if window else None, source=f"logs {path}", limits=limits, limit=limit
    )


async def from_url(url: str, window: str, limit: int, token: str | None) -> dict[str, Any]:
    """The diagnosis computed by a running service."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30.0, follow_redirects=False, trust_env=False) as client:
        try:
            response = await client.get(
                f"{url}/api/diagnose", params={"window": window, "limit": str(limit)}, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ToolError(f"GET {url}/api/diagnose: {type(exc).__name__}: {exc}") from None
    if response.status_code == 401:
        raise ToolError("the service requires its operator token: pass --token or set RDV_OPERATOR_TOKEN")
    if response.status_code != 200:
        raise ToolError(f"GET {url}/api/diagnose → HTTP {response.status_code}: {response.text[:200]}")
    report: dict[str, Any] = response.json()
    return report


# --------------------------------------------------------------------------- rendering
def _status(meets: bool | None) -> str:
    return "no data" if meets is None else ("ok" if meets else "MISSED")


def _time(value: str | None) -> str:
    if not value:
        return "?"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render(report: Mapping[str, Any]) -> str:
    """The diagnosis as readable text: targets, final states, causes, dominant pattern, calls."""
    s = report["summary"]
    scope = f"window {report['window']}"
    if report.get("since"):
        scope += f" ({_time(report['since'])} → {_time(report['until'])})"
    lines = [
        f"rdv diagnose — {report['source']}, {scope}",
        "",
        (
            f"Conversations {s['conversations']} · confirmed {s['confirmed']} · "
            f"failed {s['failures']} · cancelled {s['cancelled']} · in progress {s['in_progress']}"
        ),
        (
            f"Conversion {s['conversion_rate']:g} % of {s.get('booking_sessions', '?')} booking conversations "
            f"(book, move, undeclared) · all sessions {s.get('conversion_rate_all_sessions', 0):g} % (manual §5.5) · "
            f"cancellations {s.get('cancellations', 0)} · information calls {s.get('information_calls', 0)}"
        ),
        "",
        "Targets (seed §5.7)",
        f"  {'metric':<32}{'value':>9}  {'target':<8}{'count':>11}  status",
    ]
    for t in report["targets"]:
        lines.append(
            f"  {t['label']:<32}{t['value']:>7.1f} %  {t['target']:<8}{t['count']:>6}/{t['of']:<4}  "
            f"{_status(t['meets'])}"
        )
    lines += ["", "Final state of non-confirmed conversations"]
    lines += [f"  {state:<16}{count:>5}" for state, count in report["final_states"].items()] or ["  (none)"]
    lines += ["", "Failure causes"]
    lines += [
        f"  {p['pattern']:<20}{p['conversations']:>5}  {p['share']:>6g} %  {p['label']}"
        + ("" if p.get("in_manual", True) else "  (not in the manual)")
        for p in report.get("patterns", [])
    ] or ["  (none)"]
    lines.append("")
    dominant = report.get("dominant")
    if dominant is None:
        lines.append("Dominant failure pattern: no failed conversation in this window")
    else:
        lines += [
            f"Dominant failure pattern: {dominant['pattern']} — {dominant['label']}",
            f"  {dominant['conversations']} of {s['failures']} failed conversations ({dominant['share']:g} %)",
            f"  Action:   {dominant['action']}",
        ]
        if dominant["constant"]:
            change = dominant.get("suggestion") or "nothing left to raise or lower: look at the calls"
            lines.append(f"  Constant: {dominant['constant']} — now {dominant.get('current')}; {change}")
        elif dominant["suggestion"]:
            lines.append(f"  Setting:  {dominant['suggestion']}")
        lines.append(f"  Seed:     {dominant['seed']}")
    rows = report["conversations"]
    lines += [
        "",
        f"Conversations (most recent {len(rows)} of {s['conversations']})",
        f"  {'conv_id':<28}{'final state':<16}{'turns':>5}  {'outcome':<14}{'cause':<20}signals",
    ]
    for c in rows:
        lines.append(
            f"  {c['conv_id'][:27]:<28}{(c['final_state'] or '?'):<16}{c['turns']:>5}  "
            f"{c['outcome']:<14}{c['cause']:<20}{'; '.join(c['signals'])}".rstrip()
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- command
def register(subparsers: Any) -> None:
    """Add ``rdv diagnose`` to the command line."""
    p = subparsers.add_parser(
        "diagnose", help="why calls stop before CONFIRMED: the seed's checklist, automated",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = add_source_options(p, "GET /api/diagnose")
    source.add_argument("--logs", metavar="FILE", help="read a log file of the seed's format ('-' for stdin)")
    p.add_argument("--window", default=None,
                   help="look-back like 1h, 24h, 7d (default 24h; with --logs, the whole file)")
    p.add_argument("--until", default=None, help="end of the window, ISO time (default now; not with --url)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="conversations listed (default 20)")
    p.add_argument("--token", default=None, help="operator token for --url (default $RDV_OPERATOR_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``rdv diagnose``."""
    if args.limit < 0:
        raise ToolError("--limit must be 0 or more")
    try:
        if args.url:
            if args.until:
                raise ToolError("--until is not available with --url (the service diagnoses up to now)")
            window = stats.parse_window(args.window)
            token = secret_of(args.token, "RDV_OPERATOR_TOKEN")
            report = asyncio.run(from_url(check_url(args.url), window.label, args.limit, token))
            report["source"] = f"service {args.url}"
        elif args.logs:
            window_or_all = stats.parse_window(args.window) if args.window else None
            limits = build_limits(os.environ)  # the constants only: a log needs no store or secret
            report = from_logs(args.logs, window_or_all, _until(args.until), args.limit, limits)
        else:
            window = stats.parse_window(args.window)
            report = asyncio.run(from_store(load_settings(), window, _until(args.until), args.limit))
    except stats.StatsError as exc:
        raise ToolError(f"--window: {exc}") from None
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else render(report))
    return 0
