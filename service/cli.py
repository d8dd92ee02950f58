"""The ``rdv`` command: serve, understand, migrate, and the operator tools.

Each operator tool (diagnose, simulate, probe) lives in its own module exposing
``register(subparsers)``; this module only dispatches.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.config import (
    ConfigError,
    Settings,
    load_practice,
    load_settings,
    server_port,
    sqlite_file,
    writable_directory,
)
from service.engine.model import RdvError

TOOL_MODULES = (
    "service.tools.diagnose", "service.tools.simulate", "service.tools.probe", "service.tools.replay",
    "service.tools.misses",
)


def _server_options(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """uvicorn settings shared by one-process and multi-worker serving: httptools bounded by
    the connection limits (idle, head deadline and size, concurrency)."""
    from service.http.connections import ConnectionLimits

    return {
        "host": args.host,
        "port": args.port,
        "loop": "uvloop",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": args.graceful_seconds,
        **ConnectionLimits.of(settings).uvicorn_options(),
    }


def _serve(args: argparse.Namespace) -> int:
    args.port = server_port(args.port)
    settings = load_settings()
    practice = load_practice(settings.practice_file)
    # The checks `rdv check-config` makes, before uvicorn: a store that cannot open would
    # otherwise fail in the lifespan with uvicorn's traceback instead of one line. The store's
    # warnings are read by the lifespan, which logs them as config_warning lines.
    _store_check(settings, warnings=False)

    import uvicorn

    from service.http.app import create_app
    from service.http.server import DrainingServer

    if args.workers > 1:
        return _serve_workers(args, settings)
    app = create_app(settings, practice=practice)
    config = uvicorn.Config(app, **_server_options(args, settings))
    server = DrainingServer(config, app.state.services, args.drain_seconds)
    print(f"rdv listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    server.run()
    return 0


def _serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """Several uvicorn worker processes on one port; metrics aggregated across them.

    prometheus-client's multiprocess mode needs ``PROMETHEUS_MULTIPROC_DIR`` set, and emptied,
    before any worker starts; exemplars are off in that mode (the library does not support
    them there). Each worker opens the same store; SQLite's WAL and BEGIN IMMEDIATE keep
    turns and bookings consistent across processes.
    """
    import os
    import shutil

    import uvicorn

    multiproc = settings.metrics_multiproc_dir or settings.data_dir / "prometheus-multiproc"
    shutil.rmtree(multiproc, ignore_errors=True)
    try:
        multiproc.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"PROMETHEUS_MULTIPROC_DIR={str(multiproc)!r} cannot be created: {exc.strerror or exc}"
        ) from None
    # Exported, not only read: prometheus-client reads it in each worker process it starts.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    print(f"rdv listening on http://{args.host}:{args.port} ({args.workers} workers)", file=sys.stderr, flush=True)
    # Each worker's app handles the proxy headers itself (service.http.front.Served).
    uvicorn.run("service.http.app:app_from_env", factory=True, workers=args.workers,
                **{**_server_options(args, settings), "proxy_headers": False})
    return 0


def _understand(args: argparse.Namespace) -> int:
    from service.tools import understand as batch

    try:  # the configured practice gives naive times their zone and "outside_hours" its hours
        practice = load_practice(load_settings().practice_file)
    except ConfigError as exc:
        print(f"warning: {exc}; naive times read in Europe/Paris, outside_hours not computed", file=sys.stderr)
        practice = None
    if args.check is not None:
        return _check_labelled(args, practice)
    return batch.run(sys.stdin, sys.stdout, practice)


def _check_labelled(args: argparse.Namespace, practice: Any) -> int:
    """``rdv understand --check FILE.jsonl``: accuracy of a labelled file; exit 1 on any wrong answer."""
    import json

    from service.tools import labelled

    try:
        with open(args.check, encoding="utf-8") as lines:
            records = labelled.read(lines, args.check)
    except OSError as exc:
        raise RdvError(f"--check {args.check}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RdvError(str(exc)) from None
    report = labelled.check(records, practice)
    print(json.dumps(report.as_json(), ensure_ascii=False, indent=2) if args.json else labelled.render(report))
    return 1 if report.wrong else 0


def _store_name(settings: Any) -> str:
    """The database a command touches, as an operator names it (never a password)."""
    if settings.database_url == "memory:":
        return "memory:"
    path = sqlite_file(settings.database_url, settings.data_dir)
    if path is not None:
        return f"SQLite {path.resolve()}"
    return f"PostgreSQL {(settings.database_url or '').rsplit('@', 1)[-1]}"


def _migrate(args: argparse.Namespace) -> int:
    from service.storage import migrate, open_store
    from service.storage.migrations import POSTGRES_STEPS, SQLITE_STEPS

    settings = load_settings()

    async def run() -> int:
        store = open_store(settings.database_url, settings.data_dir)
        await migrate(store)
        try:
            return await store.schema_version()
        finally:
            await store.close()

    version = asyncio.run(run())
    steps = len(SQLITE_STEPS if sqlite_file(settings.database_url, settings.data_dir) else POSTGRES_STEPS)
    print(f"{_store_name(settings)}: schema version {version} of {steps}")
    return 0


def _backup(args: argparse.Namespace) -> int:
    import sqlite3

    settings = load_settings()
    path = sqlite_file(settings.database_url, settings.data_dir)
    if settings.database_url == "memory:":
        raise ConfigError("RDV_DATABASE_URL=memory: keeps nothing to back up")
    if path is None:
        print(
            "rdv backup copies the SQLite file; for PostgreSQL use its own tool, e.g.\n"
            '  pg_dump --format=custom --file=rdv-$(date +%F).dump "$RDV_DATABASE_URL"\n'
            "and restore with pg_restore --clean --dbname \"$RDV_DATABASE_URL\" rdv-YYYY-MM-DD.dump",
            file=sys.stderr,
        )
        return 1
    if not path.is_file():
        raise ConfigError(f"no SQLite store at {path} (RDV_DATA_DIR / RDV_DATABASE_URL)")
    dest = Path(args.dest)
    if dest.exists() and dest.resolve() == path.resolve():
        raise ConfigError(f"{dest} is the live store itself")
    if dest.exists() and not args.force:
        raise ConfigError(f"{dest} already exists (--force replaces it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    # sqlite3's online backup: a consistent copy while rdv serve keeps writing.
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(tmp)
    try:
        with target:
            source.backup(target, pages=1024)
        check = target.execute("PRAGMA integrity_check").fetchone()[0]
        version = target.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    finally:
        source.close()
        target.close()
    if check != "ok":
        tmp.unlink(missing_ok=True)
        raise RdvError(f"backup of {path} failed its integrity check: {check}")
    tmp.replace(dest)
    print(f"backed up SQLite {path.resolve()} to {dest} ({dest.stat().st_size} bytes, schema version {version})")
    return 0


def _repair_bookings(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from service.storage import open_store

    settings = load_settings()

    async def run() -> int:
        store = open_store(settings.database_url, settings.data_dir, timeout=settings.store_timeout_seconds)
        await store.open()
        try:
            orphans = await store.unconfirmed_bookings()
            for o in orphans:
                print(f"unconfirmed booking {o.booking_id}: conversation {o.conv_id}, slot {o.slot_start.isoformat()}, "
                      f"made {o.created_at.isoformat()}")
            if args.dry_run or not orphans:
                print(f"{len(orphans)} unconfirmed booking(s){'' if args.dry_run else ', nothing to free'}",
                      file=sys.stderr)
                return 1 if orphans else 0
            freed = await store.release_bookings([o.booking_id for o in orphans], datetime.now(UTC))
            print(f"freed {freed} unconfirmed booking(s)", file=sys.stderr)
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


def _forget(args: argparse.Namespace) -> int:
    from service.phones import caller_id
    from service.storage import open_store

    phone = caller_id(args.phone)
    if phone is None:
        raise ConfigError(f"{args.phone!r} is not a valid phone number (e.g. +33612345678 or 06 12 34 56 78)")
    settings = load_settings()

    async def run() -> tuple[int, int]:
        store = open_store(settings.database_url, settings.data_dir, timeout=settings.store_timeout_seconds)
        await store.open()
        try:
            return await store.forget_caller(phone)
        finally:
            await store.close()

    conversations, bookings = asyncio.run(run())
    print(f"{_store_name(settings)}: forgot {phone}: {conversations} conversation(s), {bookings} booking(s) "
          "(numbers, names and words erased; outcomes and counts kept)")
    return 0


def _purge(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from service.storage import open_store

    settings = load_settings()
    days = args.days or settings.retention_days

    async def run() -> int:
        store = open_store(settings.database_url, settings.data_dir, timeout=settings.store_timeout_seconds)
        await store.open()
        try:
            return await store.purge_before(datetime.now(UTC) - timedelta(days=days))
        finally:
            await store.close()

    purged = asyncio.run(run())
    print(f"{_store_name(settings)}: purged {purged} conversation(s) older than {days} days "
          "(anonymous daily counts kept)")
    return 0


def _check(args: argparse.Namespace) -> int:
    port = server_port(args.port)
    settings = load_settings()
    practice = load_practice(settings.practice_file)
    where, store_warnings = _store_check(settings)
    print(f"configuration valid: {practice.name} ({practice.timezone.key}); port {port}; store {where}")
    for warning in [*settings.warnings, *store_warnings]:
        print(f"warning: {warning}", file=sys.stderr)
    if practice.calendar.external:
        from service.calendars.check import describe_calendar

        print(asyncio.run(describe_calendar(practice, settings)))
    return 0


def _store_check(settings: Any, *, warnings: bool = True) -> tuple[str, list[str]]:
    """Open the store as `rdv serve` does (a ConfigError naming the variable when it cannot);
    a short description of it, and (``warnings``) its warnings about the database's
    configuration."""
    from service.storage import StoreError, open_store

    writable_directory(settings)
    path = sqlite_file(settings.database_url, settings.data_dir)
    where = "memory:" if settings.database_url == "memory:" else (
        str(path) if path is not None else (settings.database_url or "").split("@")[-1]
    )

    async def run() -> list[str]:
        store = open_store(settings.database_url, settings.data_dir, timeout=settings.store_timeout_seconds)
        try:
            await store.open()
            return await store.warnings() if warnings else []
        finally:
            await store.close()

    try:
        found = asyncio.run(run())
    except (StoreError, OSError) as exc:
        variable = "RDV_DATABASE_URL" if settings.database_url else "RDV_DATA_DIR"
        raise ConfigError(f"{variable}: the store at {where} does not open: {exc}") from None
    return where, found


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="rdv", description="French appointment-booking assistant engine")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (SQLite by default)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    serve.add_argument("--port", type=int, default=None,
                       help="port to listen on (default $PORT when set, else 8000)")
    serve.add_argument("--graceful-seconds", type=int, default=20,
                       help="how long in-flight requests may take to finish after the drain (default 20)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (default 1; >1 turns on prometheus-client's multiprocess mode)")
    serve.add_argument("--drain-seconds", type=float, default=2.0,
                       help="on SIGTERM, how long /readyz fails before the server stops accepting (default 2)")
    serve.set_defaults(func=_serve)
    from service.tools.understand import TASKS

    understand = sub.add_parser(
        "understand", help="parse JSON lines of caller phrases from stdin",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            'Reads JSON lines {"task", "text", "context"} on stdin, writes {"predicted": …} per line.\n\n'
            f"tasks: {', '.join(TASKS)}\n"
            "context keys:\n"
            "  state  the state the assistant is in (turn; default START)\n"
            "  now    ISO date-time of the turn (turn, preference; without offset: the practice's zone)\n"
            '  slots  the proposed slots, [{"start": ISO, "label": …}] (slot_choice; turn optional)\n'
            "The practice comes from RDV_PRACTICE_FILE (default: the bundled example)."
        ),
    )
    understand.add_argument("--check", metavar="FILE.jsonl", default=None,
                            help="compare the answers with the file's labelled `expected` and report accuracy "
                                 "(exit 1 when any is wrong)")
    understand.add_argument("--json", action="store_true", help="with --check: the report as JSON")
    understand.set_defaults(func=_understand)
    migrate = sub.add_parser(
        "migrate", help="apply the store's schema migrations; prints the database and its schema version",
    )
    migrate.set_defaults(func=_migrate)
    backup = sub.add_parser(
        "backup",
        help="copy the SQLite store while rdv serves (sqlite3's online backup); PostgreSQL: prints pg_dump guidance",
    )
    backup.add_argument("dest", help="the backup file to write (e.g. /data/backups/rdv-2026-03-03.sqlite3)")
    backup.add_argument("--force", action="store_true", help="replace DEST if it exists (default: refuse)")
    backup.set_defaults(func=_backup)
    forget = sub.add_parser(
        "forget",
        help="erase a caller's personal data (number, names, words, Vapi reports; bookings keep their slot)",
    )
    forget.add_argument("phone", help="the caller's number, in any usual form (+33612345678, 06 12 34 56 78)")
    forget.set_defaults(func=_forget)
    purge = sub.add_parser(
        "purge",
        help="delete ended conversations older than the retention period, keeping anonymous daily counts "
             "(rdv serve also does it hourly)",
    )
    purge.add_argument("--days", type=int, default=None,
                       help="retention in days (default $RDV_RETENTION_DAYS, else 90)")
    purge.set_defaults(func=_purge)
    repair = sub.add_parser(
        "repair-bookings",
        help="list and free active bookings that no caller heard confirmed (left by a crash of an older version)",
    )
    repair.add_argument("--dry-run", action="store_true",
                        help="only list them; exit 1 when there are any (default: free them)")
    repair.set_defaults(func=_repair_bookings)
    check = sub.add_parser(
        "check-config",
        help="validate what `rdv serve` checks at start-up: the environment, $PORT, the practice file, "
             "and that the store opens (its schema migrated)",
    )
    check.add_argument("--port", type=int, default=None,
                       help="the --port `rdv serve` will get (default $PORT, else 8000)")
    check.set_defaults(func=_check)
    for name in TOOL_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name not in (name, "service.tools"):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rdv`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"rdv: configuration error: {exc}", file=sys.stderr)
        return 2
    except RdvError as exc:
        print(f"rdv: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
