"""The PostgreSQL store's connections: kept between calls, never more than ``max_size`` open,
shared fairly when all are busy, and given back or replaced whatever ends a call (a lock
that outlasts the timeout, a cancelled caller, a server that kills them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from service.storage.base import StoreError
from service.storage.postgres import PostgresStore
from tests.storage.test_contract import Backend, conversation, create

pytestmark = pytest.mark.postgres


class Opened:
    """The connections a store opened, and which of them are still open."""

    def __init__(self) -> None:
        self.all: list[asyncpg.Connection] = []

    def live(self) -> int:
        return sum(not c.is_closed() for c in self.all)

    def connection_class(self) -> type[asyncpg.Connection]:
        opened = self

        class Tracked(asyncpg.Connection):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                opened.all.append(self)

        return Tracked


async def opened_store(backend: Backend, opened: Opened, **options: Any) -> PostgresStore:
    assert backend.database_url is not None
    store = PostgresStore(backend.database_url, connection_class=opened.connection_class(), **options)
    backend.stores.append(store)
    await store.open()
    return store


@asynccontextmanager
async def conversations_locked(backend: Backend) -> AsyncIterator[None]:
    """While inside, every read of the conversations waits (another session locks the table)."""
    admin = await asyncpg.connect(backend.database_url)
    try:
        async with admin.transaction():
            await admin.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await admin.close()


async def test_one_connection_serves_calls_one_after_another(postgres: Backend) -> None:
    """Calls in turn reuse the connection the first one opened."""
    opened = Opened()
    store = await opened_store(postgres, opened)
    await create(store, conversation())
    for _ in range(20):
        assert await store.load("conv_1") is not None
    assert opened.live() == 1


async def test_more_calls_than_connections_wait_for_one_and_all_finish(postgres: Backend) -> None:
    """Ten calls at once on a store of two connections: two run, the others wait for one to
    be given back; none fails and no third connection is opened."""
    opened = Opened()
    store = await opened_store(postgres, opened, max_size=2, timeout=10.0)
    await create(store, conversation())
    async with conversations_locked(postgres):
        calls = [asyncio.ensure_future(store.load("conv_1")) for _ in range(10)]
        await asyncio.sleep(0.3)
        assert not any(c.done() for c in calls)
    found = await asyncio.gather(*calls)
    assert all(s is not None and s.version == 1 for s in found)
    assert len(opened.all) == 2
    assert opened.live() == 2


async def test_calls_past_the_timeout_fail_and_the_store_recovers(postgres: Backend) -> None:
    """With its only connection held by a call waiting on a lock, a second call waits for a
    connection and both fail at the store timeout; once the lock is gone every call works,
    still on at most one connection."""
    opened = Opened()
    store = await opened_store(postgres, opened, max_size=1, timeout=0.3)
    await create(store, conversation())
    async with conversations_locked(postgres):
        results = await asyncio.gather(store.load("conv_1"), store.load("conv_1"), return_exceptions=True)
        assert all(isinstance(r, StoreError) and "TimeoutError" in str(r) for r in results), results
    found = await asyncio.gather(*(store.load("conv_1") for _ in range(5)))
    assert all(s is not None for s in found)
    assert opened.live() <= 1


async def test_a_caller_cancelled_while_waiting_leaves_no_connection_behind(postgres: Backend) -> None:
    """Callers cancelled while waiting for a connection, or while their query runs, take
    nothing with them: afterwards the store still serves as many calls at once as it has
    connections."""
    opened = Opened()
    store = await opened_store(postgres, opened, max_size=2, timeout=10.0)
    await create(store, conversation())
    async with conversations_locked(postgres):
        calls = [asyncio.ensure_future(store.load("conv_1")) for _ in range(6)]
        await asyncio.sleep(0.2)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
    found = await asyncio.wait_for(asyncio.gather(*(store.load("conv_1") for _ in range(8))), 10)
    assert all(s is not None for s in found)
    assert opened.live() <= 2


async def test_connections_killed_by_the_server_are_replaced(postgres: Backend) -> None:
    """After the server terminates the store's connections, a call may fail (StoreError) but
    the store opens new ones and the next calls work."""
    opened = Opened()
    store = await opened_store(postgres, opened, max_size=3)
    await create(store, conversation())
    await asyncio.gather(*(store.load("conv_1") for _ in range(6)))
    admin = await asyncpg.connect(postgres.database_url)
    try:
        pids = [c.get_server_pid() for c in opened.all if not c.is_closed()]
        assert pids
        await admin.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p", pids)
    finally:
        await admin.close()
    await asyncio.sleep(0.1)
    for _ in range(len(pids) + 1):
        with suppress(StoreError):
            await store.load("conv_1")
    assert await store.load("conv_1") is not None
    assert opened.live() >= 1
    assert all(c.get_server_pid() not in pids for c in opened.all if not c.is_closed())


async def test_close_closes_every_connection(postgres: Backend) -> None:
    """Closing the store closes the connections it kept, idle or not."""
    opened = Opened()
    store = await opened_store(postgres, opened, max_size=3)
    await create(store, conversation())
    await asyncio.gather(*(store.load("conv_1") for _ in range(6)))
    assert opened.live() >= 1
    await store.close()
    assert opened.live() == 0
