"""``python -m bench.ab [--base REV] [--changed REV]``: two versions of rdv, measured side by side.

A change's effect on the CPU a turn costs is often a few percent, while a shared machine's
speed drifts by tens of percent within seconds: two runs of ``make bench`` minutes apart
cannot tell such a change from the drift, nor can two servers loaded in turn (two copies of
one version loaded in turn, 2 to 8 seconds each, gave ratios from 0.72 to 1.20 from one
round to the next on the machine this was written on). Here both versions serve at once, on
the same core, with the same practice, calendar fill and load (``turns.lua``, a ``wrk`` each,
on the other core): whatever slows the machine slows both in the same seconds, and their CPU
per turn over the same seconds is compared, round by round (each round's ratio is printed,
and their spread is the run's own noise: 0.01 to 0.07 for two copies of one version there).
The turns/s each gets is printed too, but the two share a core: compare their CPU per turn.
Sharing a core makes a difference read somewhat larger than with each server alone (telemetry
off over on in the serving process: 0.764 shared, 0.79 to 0.82 alone): read here the sign and
the size of a change, and the targets in ``make bench``.

``--postgres [URL]`` puts each version on a schema of its own, its connections named after it
(``application_name``), so that each version's database backends, and their CPU per turn, are
told apart when the server runs on this machine.

``--env NAME=VALUE`` sets a setting of the changed server only: ``--changed HEAD --env
RDV_TELEMETRY=false`` measures what a setting costs.

``--base`` (default ``HEAD``) and ``--changed`` (default: this checkout's files, committed or
not) name git revisions. Each version's ``service`` and ``telemetry`` packages are copied
into a temporary directory and served from there, the same way for both, with this
checkout's installed dependencies (served from the installed checkout instead, the same
version measured 1.5 to 2.5 % cheaper than its copy). Each server must report in
``rdv_build_info`` the engine revision of the sources it was given, or the run stops.
Prints JSON; loopback only, bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import statistics
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
from bench.procs import process_cpu_seconds
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


def copy_checkout(dest: Path) -> Path:
    """This checkout's ``service`` and ``telemetry`` packages as they are, copied under ``dest``."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def served_revision(url: str) -> str | None:
    """The engine revision a running rdv server reports (``rdv_build_info``)."""
    found = _BUILD_INFO.search(httpx.get(f"{url}/metrics", timeout=10).text)
    return found.group(1) if found else None


@contextlib.contextmanager
def schemas(base: str, names: list[str]) -> Iterator[list[str]]:
    """A new schema per name on the PostgreSQL server ``base`` (dropped afterwards), as URLs
    whose connections are named after it (``application_name``: see :func:`backends`)."""
    for name in names:
        asyncio.run(bench_postgres.admin(base, f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
    try:
        yield [f"{bench_postgres.bench_url(base, name)}&application_name={name}" for name in names]
    finally:
        for name in names:
            with bench.suppress_all():
                asyncio.run(bench_postgres.admin(base, f"DROP SCHEMA IF EXISTS {name} CASCADE"))


def backends(base: str, application: str) -> dict[int, float]:
    """The local PostgreSQL backends of the connections named ``application``: pid -> CPU
    seconds spent so far."""

    found = asyncio.run(bench_postgres.rows(
        base, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", application))
    spent = {int(row[0]): process_cpu_seconds(int(row[0])) for row in found}
    return {pid: cpu for pid, cpu in spent.items() if cpu is not None}


def together(contenders: list[bench.Contender], seconds: int, connections: int,
             databases: list[tuple[str, str]] | None = None) -> None:
    """One round: every contender loaded at once by a wrk of its own (on the load core), each
    one's CPU read around it, and that of its own database backends (``databases``: the
    server's URL and the application name of each contender's connections; a backend started
    during the round counts whole)."""
    meters = [bench.CpuMeter(one.pid) for one in contenders]
    before = [backends(base, name) for base, name in databases or []]
    runs = bench.wrk_each([one.url for one in contenders], contenders[0].script, seconds, connections,
                          bench.load_core())
    after = [backends(base, name) for base, name in databases or []]
    spent_db = [sum(cpu - was.get(pid, 0.0) for pid, cpu in now.items())
                for was, now in zip(before, after, strict=True)]
    for i, (one, meter, done) in enumerate(zip(contenders, meters, runs, strict=True)):
        one.add(done, *meter.spent(), spent_db[i] if spent_db else None)


def side(one: bench.Contender, source: str, revision: str) -> dict[str, Any]:
    """One version's figures."""
    return {
        "source": source,
        "engine_revision": revision,
        "turn_rps": one.rate,
        "cpu_us_per_turn": one.per_request(one.cpu),
        "serving_cpu_us_per_turn": one.per_request(one.cpu_alone),
        "non_2xx": one.non_2xx,
        **({"database_cpu_us_per_turn": one.per_request(one.db_cpu)} if one.database else {}),
    }


def _ratio(changed: float, base: float) -> float | None:
    return round(changed / base, 3) if base else None


def _per_turn_ratio(base: tuple[int, float], changed: tuple[int, float]) -> float | None:
    """Changed over base, of CPU seconds per request, each given as (requests, seconds)."""
    (b_req, b_cpu), (c_req, c_cpu) = base, changed
    return _ratio(c_cpu / c_req, b_cpu / b_req) if b_req and c_req else None


def _spread(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(max(known) - min(known), 3) if len(known) == len(values) and known else None


def ratios(base: bench.Contender, changed: bench.Contender) -> dict[str, Any]:
    """Changed over base, of CPU per turn (whole tree, serving process): over the whole run,
    round by round, and the rounds' spread and median."""
    pairs = list(zip(base.slices, changed.slices, strict=True))
    serving = [_per_turn_ratio((b[0], b[2]), (c[0], c[2])) for b, c in pairs]
    tree = [_per_turn_ratio((b[0], b[1]), (c[0], c[1])) for b, c in pairs]
    known = [r for r in serving if r is not None]
    return {
        "serving_cpu_ratio": _per_turn_ratio((base.requests, base.cpu_alone), (changed.requests, changed.cpu_alone)),
        "cpu_ratio": _per_turn_ratio((base.requests, base.cpu), (changed.requests, changed.cpu)),
        "serving_cpu_ratio_by_round": serving,
        "serving_cpu_ratio_median": round(statistics.median(known), 3) if known else None,
        "serving_cpu_ratio_round_spread": _spread(serving),
        "cpu_ratio_by_round": tree,
        "turn_rps_ratio": _ratio(changed.rate, base.rate),
        **({"database_cpu_ratio": _per_turn_ratio((base.requests, base.db_cpu), (changed.requests, changed.db_cpu))
            if base.db_cpu is not None and changed.db_cpu is not None else None}
           if base.database and changed.database else {}),
    }


def compare(base: Path, changed: Path, *, labels: tuple[str, str], seconds: int, prefill: float,
            telemetry: bool, postgres: str | None, rounds: int = 4, connections: int = 8,
            changed_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Serve the packages under ``base`` and under ``changed`` at once (the changed server
    with ``changed_env`` added to its environment), load both together ``rounds`` times, and
    return both sides' figures and their ratios."""
    work = Path(tempfile.mkdtemp(prefix="rdv-ab-"))
    sources = {"base": base, "changed": changed}
    with contextlib.ExitStack() as stack:
        sink_port = bench.free_port()
        stack.enter_context(bench.process([sys.executable, "-m", "bench.sink", str(sink_port)],
                                          dict(os.environ), None, work / "sink.log"))
        names = [f"rdv_ab_{os.getpid()}_{name}" for name in sources]
        urls = stack.enter_context(schemas(postgres, names)) if postgres else [None, None]
        local = postgres is not None and bench.postgres_is_local(postgres)
        contenders = {}
        for (name, source), url in zip(sources.items(), urls, strict=True):
            env = bench.rdv_env(work / f"data-{name}", telemetry, sink_port if telemetry else None)
            if url:
                env["RDV_DATABASE_URL"] = url
            if name == "changed":
                env.update(changed_env or {})
            port = bench.free_port()
            proc = stack.enter_context(bench.serve(sys.executable, port, env, work / f"rdv-{name}.log", source=source))
            address = f"http://127.0.0.1:{port}"
            expected, reported = engine_revision(source / "service" / "engine"), served_revision(address)
            if reported != expected:
                raise SystemExit(f"bench.ab: the {name} server runs engine revision {reported}, "
                                 f"not {expected} of {source}")
            if prefill > 0:
                bench.prefill(port, prefill, f"ab{name}")
            contenders[name] = bench.Contender(name, proc.pid, address, database=local)
        pair = list(contenders.values())
        for one in pair:
            bench.wrk(one.url, one.script, 2, connections)  # warm-up
        databases = [(postgres, name) for name in names] if postgres and local else None
        for _ in range(rounds):
            together(pair, bench.slice_seconds(seconds, rounds), connections, databases)
    one, two = pair
    return {
        "seconds": seconds,
        "rounds": rounds,
        "telemetry": telemetry,
        "database": "postgresql" if postgres else "sqlite",
        "prefill_share": prefill,
        "changed_env": changed_env or {},
        "base": side(one, labels[0], engine_revision(base / "service" / "engine")),
        "changed": side(two, labels[1], engine_revision(changed / "service" / "engine")),
        **ratios(one, two),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="git revision measured as the base (default HEAD)")
    parser.add_argument("--changed", default=None,
                        help="git revision compared with it (default: this checkout's files as they are)")
    parser.add_argument("--seconds", type=int, default=16, help="load of both versions at once, split in rounds")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (both versions loaded together in each)")
    parser.add_argument("--prefill", type=float, default=0.1, help="share of the calendar booked first")
    parser.add_argument("--no-telemetry", action="store_true", help="both servers with telemetry off")
    parser.add_argument("--postgres", nargs="?", const=bench.postgres_base(), default=None, metavar="URL",
                        help="both servers on PostgreSQL, each on a schema of its own "
                             "(default URL: RDV_BENCH_POSTGRES_URL or the local server)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the changed version's server only (repeatable): with --changed "
                             "HEAD, what a setting costs (RDV_TELEMETRY=false: telemetry's share)")
    parser.add_argument("--no-pin", action="store_true", help="leave the servers and wrk unpinned")
    args = parser.parse_args(argv)
    if any("=" not in one for one in args.env):
        parser.error("--env takes NAME=VALUE")
    if args.rounds < 1 or args.seconds < args.rounds or not 0 <= args.prefill < 1:
        parser.error("--rounds must be at least 1, --seconds at least --rounds, --prefill within [0, 1)")
    bench.PINNED = bench.pin_cores(not args.no_pin)
    with tempfile.TemporaryDirectory(prefix="rdv-ab-src-") as tmp:
        base = checkout(args.base, Path(tmp) / "base")
        changed = (copy_checkout(Path(tmp) / "changed") if args.changed is None
                   else checkout(args.changed, Path(tmp) / "changed"))
        res = compare(base, changed, labels=(args.base, args.changed or "checkout"), seconds=args.seconds,
                      prefill=args.prefill, telemetry=not args.no_telemetry, postgres=args.postgres,
                      rounds=args.rounds, changed_env=dict(one.split("=", 1) for one in args.env))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
