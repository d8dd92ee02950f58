"""``python -m bench.ab [--base REV] [--changed REV]``: two versions of rdv, measured side by side.

A change's effect on the CPU a turn costs is often a few percent, while a shared machine's
speed drifts by tens of percent within a minute: two runs of ``make bench`` minutes apart
cannot tell such a change from the drift. Here both versions serve at once, on the same
core, with the same practice, calendar fill and load (``turns.lua``), and are loaded in turn,
a slice each, over a few rounds (as ``make bench`` loads the servers a ratio compares). Each
round gives its own ratio, so one run also shows how much the ratio moves from round to round.

``--base`` (default ``HEAD``) and ``--changed`` (default: this checkout's files, committed or
not) name git revisions; a revision's ``service`` and ``telemetry`` packages are taken from
git into a temporary directory and served from there, with this checkout's installed
dependencies. Each server's ``rdv_build_info`` must carry the engine revision of the sources
it was given, or the run stops. Prints JSON; loopback only, bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench import __main__ as bench
from bench import postgres as bench_postgres
from service.revision import engine_revision

ROOT = bench.HERE.parent
PACKAGES = ("service", "telemetry")
_BUILD_INFO = re.compile(r'^rdv_build_info\{[^}]*engine_revision="([0-9a-f]+)"', re.MULTILINE)


def checkout(rev: str, dest: Path) -> Path:
    """The ``service`` and ``telemetry`` packages of git revision ``rev`` of this repository,
    written under ``dest``; ``dest``."""
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, *PACKAGES],
                                 capture_output=True, check=True, timeout=60).stdout
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"bench.ab: git archive {rev}: {exc.stderr.decode(errors='replace').strip()}") from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def served_revision(url: str) -> str | None:
    """The engine revision a running rdv server reports (``rdv_build_info``)."""
    found = _BUILD_INFO.search(httpx.get(f"{url}/metrics", timeout=10).text)
    return found.group(1) if found else None


@contextlib.contextmanager
def schemas(base: str, names: list[str]) -> Iterator[list[str]]:
    """A new schema per name on the PostgreSQL server ``base`` (dropped afterwards), as URLs."""
    for name in names:
        asyncio.run(bench_postgres.admin(base, f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
    try:
        yield [bench_postgres.bench_url(base, name) for name in names]
    finally:
        for name in names:
            with bench.suppress_all():
                asyncio.run(bench_postgres.admin(base, f"DROP SCHEMA IF EXISTS {name} CASCADE"))


def side(one: bench.Contender, source: str, revision: str) -> dict[str, Any]:
    """One version's figures."""
    found: dict[str, Any] = {
        "source": source,
        "engine_revision": revision,
        "turn_rps": one.rate,
        "cpu_us_per_turn": one.per_request(one.cpu),
        "serving_cpu_us_per_turn": one.per_request(one.cpu_alone),
        "non_2xx": one.non_2xx,
    }
    if one.database:
        found["database_cpu_us_per_turn"] = one.per_request(one.db_cpu)
    return found


def _ratio(changed: float, base: float) -> float | None:
    return round(changed / base, 3) if base else None


def ratios(base: bench.Contender, changed: bench.Contender) -> dict[str, Any]:
    """Changed over base: turns/s, CPU per turn (whole tree, serving process), overall and
    round by round (the rounds' spread is the run's own noise)."""
    rounds = [
        _ratio(c_alone / c_req, b_alone / b_req) if b_req and c_req else None
        for (b_req, _, b_alone), (c_req, _, c_alone) in zip(base.slices, changed.slices, strict=True)
    ]
    tree_rounds = [
        _ratio(c_tree / c_req, b_tree / b_req) if b_req and c_req else None
        for (b_req, b_tree, _), (c_req, c_tree, _) in zip(base.slices, changed.slices, strict=True)
    ]
    return {
        "turn_rps_ratio": _ratio(changed.rate, base.rate),
        "cpu_ratio": _ratio(changed.cpu / changed.requests, base.cpu / base.requests)
        if base.requests and changed.requests else None,
        "serving_cpu_ratio": _ratio(changed.cpu_alone / changed.requests, base.cpu_alone / base.requests)
        if base.requests and changed.requests else None,
        "serving_cpu_ratio_by_round": rounds,
        "cpu_ratio_by_round": tree_rounds,
        "serving_cpu_ratio_round_spread": _spread(rounds),
    }


def _spread(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(max(known) - min(known), 3) if len(known) == len(values) and known else None


def compare(base: Path, changed: Path | None, *, labels: tuple[str, str], seconds: int, prefill: float,
            telemetry: bool, postgres: str | None, connections: int = 16) -> dict[str, Any]:
    """Serve ``base`` and ``changed`` (None: this checkout) at once, load them in turn, and
    return both sides' figures and their ratios."""
    work = Path(tempfile.mkdtemp(prefix="rdv-ab-"))
    sources = {"base": base, "changed": changed}
    with contextlib.ExitStack() as stack:
        sink_port = bench.free_port()
        stack.enter_context(bench.process([sys.executable, "-m", "bench.sink", str(sink_port)],
                                          dict(os.environ), None, work / "sink.log"))
        urls = (stack.enter_context(schemas(postgres, [f"rdv_ab_{os.getpid()}_{name}" for name in sources]))
                if postgres else [None, None])
        contenders = {}
        for (name, source), url in zip(sources.items(), urls, strict=True):
            env = bench.rdv_env(work / f"data-{name}", telemetry, sink_port if telemetry else None)
            if url:
                env["RDV_DATABASE_URL"] = url
            port = bench.free_port()
            proc = stack.enter_context(bench.serve(sys.executable, port, env, work / f"rdv-{name}.log", source=source))
            address = f"http://127.0.0.1:{port}"
            expected = engine_revision((source or ROOT) / "service" / "engine")
            reported = served_revision(address)
            if reported != expected:
                raise SystemExit(f"bench.ab: the {name} server runs engine revision {reported}, "
                                 f"not {expected} of {source or ROOT}")
            if prefill > 0:
                bench.prefill(port, prefill, f"ab{name}")
            local = bool(url) and bench.postgres_is_local()
            contenders[name] = bench.Contender(name, proc.pid, address, database=local)
        bench.interleaved(list(contenders.values()), seconds, connections)
    one, two = contenders["base"], contenders["changed"]
    return {
        "seconds": seconds,
        "rounds": bench.INTERLEAVED_SLICES,
        "telemetry": telemetry,
        "database": "postgresql" if postgres else "sqlite",
        "prefill_share": prefill,
        "base": side(one, labels[0], engine_revision(base / "service" / "engine")),
        "changed": side(two, labels[1], engine_revision((changed or ROOT) / "service" / "engine")),
        **ratios(one, two),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="git revision measured as the base (default HEAD)")
    parser.add_argument("--changed", default=None,
                        help="git revision compared with it (default: this checkout's files as they are)")
    parser.add_argument("--seconds", type=int, default=16, help="load per version, split in rounds")
    parser.add_argument("--prefill", type=float, default=0.1, help="share of the calendar booked first")
    parser.add_argument("--no-telemetry", action="store_true", help="both servers with telemetry off")
    parser.add_argument("--postgres", nargs="?", const=bench.postgres_base(), default=None, metavar="URL",
                        help="both servers on PostgreSQL, each on a schema of its own "
                             "(default URL: RDV_BENCH_POSTGRES_URL or the local server)")
    parser.add_argument("--no-pin", action="store_true", help="leave the servers and wrk unpinned")
    args = parser.parse_args(argv)
    if args.seconds < 1 or not 0 <= args.prefill < 1:
        parser.error("--seconds must be at least 1 and --prefill within [0, 1)")
    bench.PINNED = bench.pin_cores(not args.no_pin)
    with tempfile.TemporaryDirectory(prefix="rdv-ab-src-") as tmp:
        base = checkout(args.base, Path(tmp) / "base")
        changed = None if args.changed is None else checkout(args.changed, Path(tmp) / "changed")
        res = compare(base, changed, labels=(args.base, args.changed or "checkout"), seconds=args.seconds,
                      prefill=args.prefill, telemetry=not args.no_telemetry, postgres=args.postgres)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
