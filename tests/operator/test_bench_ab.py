"""``python -m bench.ab``: two versions of rdv served side by side, each from the sources it
was given, loaded in turn, and compared round by round."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench import ab
from service.revision import engine_revision

ROOT = Path(__file__).resolve().parents[2]


def test_a_revision_is_checked_out_from_git(tmp_path: Path) -> None:
    dest = ab.checkout("HEAD", tmp_path / "base")
    committed = subprocess.run(["git", "-C", str(ROOT), "show", "HEAD:service/revision.py"],
                               capture_output=True, check=True).stdout
    assert (dest / "service" / "revision.py").read_bytes() == committed
    assert (dest / "telemetry" / "names.py").is_file() and not (dest / "tests").exists()


def test_an_unknown_revision_stops_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no-such-revision"):
        ab.checkout("no-such-revision", tmp_path / "base")


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is installed by make test-deps")
def test_each_version_serves_from_its_own_sources_and_both_are_compared(tmp_path: Path) -> None:
    """The base: this checkout's packages with one engine file changed (so its engine
    revision differs). Each server must report the revision of the sources it was given;
    both are loaded in the same rounds, and each round's ratio is of their CPU per turn."""
    base = ab.copy_checkout(tmp_path / "base")
    with (base / "service" / "engine" / "replies.py").open("a") as f:
        f.write("\n# the base version of this comparison\n")
    base_revision = engine_revision(base / "service" / "engine")
    assert base_revision != engine_revision(ROOT / "service" / "engine")

    changed = ab.copy_checkout(tmp_path / "changed")
    res = ab.compare(base, changed, labels=("base", "checkout"), seconds=2, prefill=0.0, telemetry=True,
                     postgres=None, rounds=2, connections=2, changed_env={"RDV_TELEMETRY": "false"})

    assert res["base"]["engine_revision"] == base_revision
    assert res["changed"]["engine_revision"] == engine_revision(ROOT / "service" / "engine")
    for side in ("base", "changed"):
        assert res[side]["turn_rps"] > 0 and res[side]["non_2xx"] == 0
        assert res[side]["serving_cpu_us_per_turn"] > 0
    # The setting reached the changed server only: no span exporter process below it.
    assert res["changed_env"] == {"RDV_TELEMETRY": "false"}
    assert res["base"]["cpu_us_per_turn"] > res["base"]["serving_cpu_us_per_turn"]
    assert res["changed"]["cpu_us_per_turn"] == res["changed"]["serving_cpu_us_per_turn"]
    rounds = res["serving_cpu_ratio_by_round"]
    assert len(rounds) == len(res["cpu_ratio_by_round"]) == res["rounds"] == 2
    assert all(r > 0 for r in rounds)
    assert res["serving_cpu_ratio_round_spread"] == round(max(rounds) - min(rounds), 3)
    assert min(rounds) <= res["serving_cpu_ratio_median"] <= max(rounds)
    expected = res["changed"]["serving_cpu_us_per_turn"] / res["base"]["serving_cpu_us_per_turn"]
    assert res["serving_cpu_ratio"] == pytest.approx(expected, abs=0.002)


def test_a_server_not_running_the_sources_it_was_given_stops_the_run(tmp_path: Path) -> None:
    """Sources without the packages: the server starts from the installed checkout instead,
    reports that engine revision, and the comparison stops before measuring anything."""
    base = tmp_path / "base"
    base.mkdir()
    with pytest.raises(SystemExit, match="the base server runs engine revision"):
        ab.compare(base, ab.copy_checkout(tmp_path / "changed"), labels=("base", "checkout"), seconds=1,
                   prefill=0.0, telemetry=False, postgres=None, rounds=1, connections=1)


def test_the_database_backends_of_each_version_are_told_apart_by_their_connections_name() -> None:
    """``--postgres`` names each version's connections after its schema: the backends read
    for a name are those of its connections, with the CPU each has spent."""
    import asyncio

    import asyncpg

    from tests.storage.test_contract import postgres_base_url, postgres_unreachable

    base = postgres_base_url()
    if urlsplit(base).hostname not in (None, "localhost", "127.0.0.1", "::1"):
        pytest.skip("the backends' CPU is read from /proc: a PostgreSQL server of this machine only")

    async def open_named(name: str) -> tuple[asyncpg.Connection, int]:
        conn = await asyncpg.connect(f"{base}{'&' if '?' in base else '?'}application_name={name}", timeout=5)
        return conn, int(await conn.fetchval("SELECT pg_backend_pid()"))

    async def scenario() -> None:
        try:
            mine, pid = await open_named("rdv_ab_test_mine")
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            postgres_unreachable(f"{base}: {exc}")
        other, other_pid = await open_named("rdv_ab_test_other")
        try:
            found = await asyncio.to_thread(ab.backends, base, "rdv_ab_test_mine")
            assert set(found) == {pid} and other_pid not in found and found[pid] >= 0
        finally:
            await mine.close()
            await other.close()

    asyncio.run(scenario())
