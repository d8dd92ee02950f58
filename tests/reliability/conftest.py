"""Reliability fixtures: a fresh PostgreSQL schema per test, real ``rdv serve`` replicas
and a fault injector wrapped around a real store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.reliability.procs import Replica

POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    """The PostgreSQL server the tests may use (``RDV_TEST_POSTGRES_URL``)."""
    return os.environ.get("RDV_TEST_POSTGRES_URL", "").strip() or POSTGRES_DEFAULT


def _unreachable(reason: str) -> None:
    """Skip with a visible reason, except on CI where a missing PostgreSQL is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL required on CI: {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


async def _admin(base: str, sql: str) -> None:
    import asyncpg

    conn = await asyncio.wait_for(asyncpg.connect(base), 5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def with_search_path(base: str, schema: str) -> str:
    """``base`` with every connection's ``search_path`` set to ``schema``, and the schema as
    ``application_name`` so that a test can find (and kill) exactly its own connections."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}', safe='')}&application_name={schema}"


def schema_of(url: str) -> str:
    """The schema (and application name) of a URL made by :func:`with_search_path`."""
    return url.rsplit("application_name=", 1)[1]


async def kill_connections(url: str) -> int:
    """Terminate every server connection opened with ``url``, as a database restart would."""
    import asyncpg

    conn = await asyncpg.connect(postgres_base_url())
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = $1 AND pid <> pg_backend_pid()",
            schema_of(url),
        )
    finally:
        await conn.close()
    return len(rows)


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """A database URL whose connections all use a fresh, empty schema (dropped afterwards)."""
    pytest.importorskip("service.storage.postgres", reason="the PostgreSQL store is not available")
    base = postgres_base_url()
    schema = f"rel_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(base, f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # noqa: BLE001 - refused, timed out, auth, missing database
        _unreachable(f"{base}: {type(exc).__name__}: {exc}")
    try:
        yield with_search_path(base, schema)
    finally:
        asyncio.run(_admin(base, f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL on a fresh schema for one test."""
    with fresh_schema() as url:
        yield url


@contextlib.contextmanager
def replicas(tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    """A factory of ``rdv serve`` replicas writing under ``tmp_path``; all stopped on exit."""
    started: list[Replica] = []

    def factory(env: dict[str, str] | None = None, *, name: str = "", **kwargs: Any) -> Replica:
        name = name or f"r{len(started) + 1}"
        replica = Replica(name, tmp_path, env or {}, **kwargs)
        started.append(replica)
        replica.start()
        return replica

    try:
        yield factory
    finally:
        for replica in started:
            replica.stop()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    """Start ``rdv serve`` replicas (``spawn(env, name=...)``) for one test."""
    with replicas(tmp_path) as factory:
        yield factory


class FaultyStore:
    """A real store behind a switch: ``ok`` forwards, ``hang`` never answers, ``raise`` fails.

    Only the fault is injected: in ``ok`` mode every call is the real store's.
    """

    PASSTHROUGH = frozenset({"open", "close"})
    # It can hang on purpose: the turn loop must bound every call with its own timer.
    enforces_timeout = False

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.mode = "ok"
        self.calls = 0
        # A method that fails (before reaching the store) while the others work.
        self.fail_on: str | None = None

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name in self.PASSTHROUGH or not callable(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.mode == "hang":
                await asyncio.sleep(3600)
            if self.mode == "raise" or name == self.fail_on:
                raise ConnectionRefusedError(111, "connection refused (injected)")
            return await target(*args, **kwargs)

        return call


@pytest.fixture
async def faulty_store(tmp_path: Path) -> AsyncIterator[FaultyStore]:
    """A fault injector around a real SQLite store in ``tmp_path``."""
    from service.storage import open_store

    yield FaultyStore(open_store(None, tmp_path))
