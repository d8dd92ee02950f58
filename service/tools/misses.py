"""``rdv misses``: the not-understood inbox, and its export for labelling.

What callers said that the engine could not use (a re-ask of a name, a preference, a slot
choice or a phone number, a help prompt at the start, the fallback menu, a transfer after a
recovery limit), grouped by state and field with counts, share of the turns heard in that
state, reasons, how those conversations ended, and examples. Three sources:

* ``--url URL``: ask a running service (``GET /api/understanding/misses``, operator token if set);
* ``--store`` (default): the store of ``RDV_DATABASE_URL`` / ``RDV_DATA_DIR``;
* ``--database URL``: another store, e.g. a copied SQLite file ``sqlite:///copy.db``.

Names and phone numbers inside utterances are masked (``J***``, ``06******78``) unless
``--pii`` is given: with ``--url`` it also needs the operator token; reading a store directly,
the store itself is the credential.

``--export FILE.jsonl`` writes the utterances in ``rdv understand``'s input format (task
``turn``, with the state, the practice-local time and the proposed slots, ``expected: null``):
fill in ``expected``, then ``rdv understand --check FILE.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from service import misses
from service.config import load_practice, load_settings
from service.storage import open_store
from service.tools.diagnose import sqlite_path
from service.tools.transport import ToolError, add_source_options, check_url, secret_of


async def from_store(database: str | None, since: datetime, until: datetime) -> tuple[list[misses.Miss],
                                                                                      dict[str, int]]:
    """The misses read directly from a store (the configured one, or ``database``)."""
    settings = load_settings()
    url = database if database is not None else settings.database_url
    if url == "memory:":
        raise ToolError("RDV_DATABASE_URL=memory: keeps nothing to read; use --url or --database")
    path = sqlite_path(settings)
    if database is not None:
        path = Path(database.removeprefix("sqlite:///")) if database.startswith("sqlite:///") else None
    if path is not None and not path.is_file():
        raise ToolError(f"no SQLite store at {path} (set RDV_DATA_DIR, RDV_DATABASE_URL or --database)")
    store = open_store(url, settings.data_dir, timeout=settings.store_timeout_seconds)
    await store.open()
    try:
        found, heard = await misses.read(store, since, until)
    finally:
        await store.close()
    return found, dict(heard)


async def from_url(url: str, params: dict[str, str], token: str | None) -> dict[str, Any]:
    """The inbox computed by a running service."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=60.0, follow_redirects=False, trust_env=False) as client:
        try:
            response = await client.get(f"{url}/api/understanding/misses", params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ToolError(f"GET {url}/api/understanding/misses: {type(exc).__name__}: {exc}") from None
    if response.status_code in (401, 403):
        raise ToolError(f"{response.json().get('error')}: pass --token or set RDV_OPERATOR_TOKEN")
    if response.status_code != 200:
        raise ToolError(f"GET {url}/api/understanding/misses → HTTP {response.status_code}: {response.text[:200]}")
    answer: dict[str, Any] = response.json()
    return answer


def render(inbox: dict[str, Any]) -> str:
    """The inbox as readable text: one block per (state, field), the largest first."""
    masked = " (utterances masked; --pii to show them)" if inbox["masked"] else ""
    lines = [
        f"rdv misses — {inbox['since']} → {inbox['until']}{masked}",
        f"{inbox['misses']} of {inbox['turns']} caller turns not understood ({inbox['share']:.1%})",
    ]
    for g in inbox["groups"]:
        reasons = ", ".join(f"{k} {v}" for k, v in g["reasons"].items())
        outcomes = ", ".join(f"{k} {v}" for k, v in g["outcomes"].items())
        lines += [
            "",
            (f"{g['state']} / {g['field']}: {g['misses']} of {g['turns']} turns ({g['share']:.1%}), "
            f"{g['conversations']} conversations, {g['fallbacks']} sent to a human or the menu"),
            f"  reasons:  {reasons}",
            f"  outcomes: {outcomes}",
        ]
        lines += [f"  « {e['text']} »  ({e['conv_id']} turn {e['turn']}, {e['reason']})" for e in g["examples"]]
    if not inbox["groups"]:
        lines.append("nothing to show: every caller turn of the window was understood")
    return "\n".join(lines)


def register(subparsers: Any) -> None:
    """Add ``rdv misses`` to the command line."""
    p = subparsers.add_parser(
        "misses", help="the not-understood inbox: what callers said that the engine could not use",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = add_source_options(p, "GET /api/understanding/misses")
    source.add_argument("--database", default=None, help="read this store, e.g. sqlite:///copy.db or postgresql://…")
    p.add_argument("--since", default=None, help="window start: ISO time or a look-back like 24h, 7d (default 24h)")
    p.add_argument("--until", default=None, help="window end, ISO time with zone (default now)")
    p.add_argument("--state", default=None, help="only misses in this state (e.g. QUALIF_NAME)")
    p.add_argument("--field", default=None, help="only misses of this field (e.g. name, slot_choice)")
    p.add_argument("--pii", action="store_true", help="show utterances unmasked (with --url: needs the token)")
    p.add_argument("--token", default=None, help="operator token for --url (default $RDV_OPERATOR_TOKEN)")
    p.add_argument("--export", metavar="FILE.jsonl", default=None,
                   help="write the utterances as `rdv understand` input records (task turn), to label")
    p.add_argument("--json", action="store_true", help="print the inbox as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``rdv misses``."""
    now = datetime.now(UTC)
    try:
        until = misses.moment(args.until, now, "--until")
        since = misses.moment(args.since or "24h", until, "--since")
        misses.check_filters(args.state, args.field)
    except misses.MissesError as exc:
        raise ToolError(str(exc)) from None
    if args.url:
        if args.export:
            raise ToolError("--export reads the store (the service does not send contexts): use --store or --database")
        params = {"since": since.isoformat(), "until": until.isoformat()}
        params.update({k: v for k, v in (("state", args.state), ("field", args.field)) if v})
        if args.pii:
            params["pii"] = "true"
        token = secret_of(args.token, "RDV_OPERATOR_TOKEN")
        inbox = asyncio.run(from_url(check_url(args.url), params, token))
    else:
        found, heard = asyncio.run(from_store(args.database, since, until))
        inbox = dict(misses.inbox(found, heard, since, until, state=args.state, fld=args.field, pii=args.pii))
        if args.export:
            chosen = [m for m in found if (args.state is None or m.state == args.state)
                      and (args.field is None or m.field == args.field)]
            zone = load_practice(load_settings().practice_file).timezone
            records = misses.export_records(chosen, zone, pii=args.pii)
            try:
                with open(args.export, "w", encoding="utf-8") as out:
                    out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            except OSError as exc:
                raise ToolError(f"--export {args.export}: {exc.strerror or exc}") from None
            inbox["exported"] = len(records)
    print(json.dumps(inbox, ensure_ascii=False, indent=2) if args.json else render(inbox))
    return 0
