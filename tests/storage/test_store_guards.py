"""The store calls behind replay protection and readiness, on every backend (the contract's
fixtures): a signature is accepted once and forgotten after its window; a readiness write
commits a row and fails when the database cannot take a write."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg  # type: ignore[import-untyped]
import pytest

from service.storage import SQLITE_FILE
from service.storage.base import Store, StoreError
from tests.storage.test_contract import Backend
from tests.support import NOW


async def test_a_signature_is_remembered_once_then_forgotten(store: Store) -> None:
    """The first sighting is True, a replay False; once older than ``forget_before`` the
    entry is purged, so the same key counts as new."""
    assert await store.remember_signature("sha256:aa", NOW, NOW - timedelta(seconds=600)) is True
    assert await store.remember_signature("sha256:aa", NOW, NOW - timedelta(seconds=600)) is False
    assert await store.remember_signature("sha256:bb", NOW, NOW - timedelta(seconds=600)) is True
    later = NOW + timedelta(seconds=601)
    assert await store.remember_signature("sha256:aa", later, later - timedelta(seconds=600)) is True


async def test_two_store_instances_share_signatures(backend: Backend) -> None:
    """A signature seen through one store instance is a replay through another (replicas)."""
    if not backend.shared:
        return
    first, second = await backend.opened(), await backend.opened()
    assert await first.remember_signature("sha256:cc", NOW, NOW - timedelta(seconds=600)) is True
    assert await second.remember_signature("sha256:cc", NOW, NOW - timedelta(seconds=600)) is False


async def test_readiness_write_commits_its_row(store: Store) -> None:
    """Two probes of one instance succeed (the row is upserted, not duplicated)."""
    await store.probe_write("host:1:ab", NOW, 1.0)
    await store.probe_write("host:1:ab", NOW + timedelta(seconds=5), 1.0)


@asynccontextmanager
async def writer_lock(backend: Backend) -> AsyncIterator[None]:
    """Another connection holding the write lock (SQLite) or an exclusive lock on the
    conversations table (PostgreSQL) until the block ends."""
    if backend.kind == "sqlite":
        holder = sqlite3.connect(backend.data_dir / SQLITE_FILE, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.close()
        return
    conn = await asyncpg.connect(backend.database_url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def test_readiness_write_fails_under_another_writers_lock(backend: Backend) -> None:
    """Under another writer's lock a readiness write fails within its deadline, and
    succeeds once the lock is gone."""
    if not backend.shared:
        return
    store = await backend.opened()
    async with writer_lock(backend):
        with pytest.raises(StoreError):  # not TimeoutError: the probe's own deadline answers first
            await asyncio.wait_for(store.probe_write("host:1:ab", NOW, 0.5), 1.0)
    await store.probe_write("host:1:ab", NOW, 0.5)


async def readiness_instances(backend: Backend) -> set[str]:
    """The instances with a readiness row, read straight from the database."""
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.data_dir / SQLITE_FILE) as conn:
            return {r[0] for r in conn.execute("SELECT instance FROM readiness")}
    conn = await asyncpg.connect(backend.database_url)
    try:
        return {r[0] for r in await conn.fetch("SELECT instance FROM readiness")}
    finally:
        await conn.close()


async def test_readiness_rows_of_instances_gone_for_a_day_are_dropped(backend: Backend) -> None:
    """Every process start is a new instance; a probe drops rows older than a day."""
    if not backend.shared:
        return
    store = await backend.opened()
    await store.probe_write("old:1:aa", NOW, 1.0)
    await store.probe_write("recent:2:bb", NOW + timedelta(hours=20), 1.0)
    await store.probe_write("new:3:cc", NOW + timedelta(days=1, hours=1), 1.0)
    assert await readiness_instances(backend) == {"recent:2:bb", "new:3:cc"}
