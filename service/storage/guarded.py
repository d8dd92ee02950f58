"""The store as routes and the turn loop call it: every call answers within a deadline or
raises :class:`StoreUnavailableError` (the caller then gets a graceful fallback, an HTTP
client a 503).

The deadline holds even when the call's own clean-up would not: a driver cancelling a query
on a connection that no longer answers (a network black hole) may wait far longer, so the call
is cancelled and left to finish on its own, never awaited past the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from service.engine.model import RdvError
from service.storage.base import (
    Backend,
    BookingGoneError,
    ConcurrentTurnError,
    ConversationSummary,
    DuplicateTurnError,
    EventRecord,
    ReplaySource,
    SlotTakenError,
    StoredConversation,
    StoreError,
    Timeline,
)

T = TypeVar("T")
# A week of conversations is a scan, not a turn: it may take longer than the turn path's
# store timeout without the store being unavailable.
SCAN_TIMEOUT_FACTOR = 10


class StoreUnavailableError(RdvError):
    """The store did not answer in time; the caller gets a graceful fallback."""


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """``awaitable``'s result, or TimeoutError after ``timeout`` seconds without waiting for
    its cancellation to finish (unlike ``asyncio.wait_for``)."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait((task,), timeout=timeout)
    if task in done:
        return task.result()
    task.cancel()
    task.add_done_callback(_consume)
    raise TimeoutError


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's outcome so that asyncio does not report it."""
    if not task.cancelled():
        task.exception()


async def guard(
    awaitable: Awaitable[T], timeout: float, unavailable: Callable[[], None], *, timer: bool = True
) -> T:
    """Await a store call within ``timeout`` seconds (no timer when ``timer`` is False: a store
    that bounds its own calls); failures become StoreUnavailableError, after telling
    ``unavailable``. The turn's own outcomes (a concurrent turn, a duplicate, a taken slot, a
    booking gone) pass through unchanged."""
    try:
        if not timer:
            return await awaitable
        return await within(awaitable, timeout)
    except TimeoutError:
        unavailable()
        raise StoreUnavailableError("the store did not answer in time") from None
    except (ConcurrentTurnError, DuplicateTurnError, SlotTakenError, BookingGoneError):
        raise
    except (StoreError, OSError) as exc:
        unavailable()
        raise StoreUnavailableError(str(exc)) from exc


class GuardedStore:
    """``store`` as routes read it: each call behind a deadline of ``timeout`` seconds
    (:func:`guard`); ``unavailable`` is told of each failure (``rdv_store_unavailable``)."""

    def __init__(self, store: Backend, timeout: float, unavailable: Callable[[], None]) -> None:
        self.store = store
        self.timeout = timeout
        self.unavailable = unavailable

    def within(self, timeout: float) -> GuardedStore:
        """The same store behind another deadline (operator scans, the purge)."""
        return GuardedStore(self.store, timeout, self.unavailable)

    def scans(self) -> GuardedStore:
        """The same store behind the deadline of operator scans."""
        return self.within(self.timeout * SCAN_TIMEOUT_FACTOR)

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Await a store call within the deadline; failures become StoreUnavailableError."""
        return await guard(awaitable, self.timeout, self.unavailable)

    async def load(self, conv_id: str) -> StoredConversation | None:
        """:meth:`Store.load` within the deadline."""
        return await self.call(self.store.load(conv_id))

    async def save_call_report(self, conv_id: str, report: dict[str, Any], at: datetime) -> bool:
        """:meth:`Store.save_call_report` within the deadline."""
        return await self.call(self.store.save_call_report(conv_id, report, at))

    async def remember_signature(self, key: str, now: datetime, forget_before: datetime) -> bool:
        """:meth:`Store.remember_signature` within the deadline."""
        return await self.call(self.store.remember_signature(key, now, forget_before))

    async def taken_slots(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """:meth:`Store.taken_slots` within the deadline."""
        return await self.call(self.store.taken_slots(start, end))

    async def purge_before(self, cutoff: datetime) -> int:
        """:meth:`Store.purge_before` within the deadline."""
        return await self.call(self.store.purge_before(cutoff))

    async def active_counts(self) -> dict[str, int]:
        """:meth:`Store.active_counts` within the deadline."""
        return await self.call(self.store.active_counts())

    async def timeline(self, conv_id: str) -> Timeline | None:
        """:meth:`Store.timeline` within the deadline."""
        return await self.call(self.store.timeline(conv_id))

    async def conversations_seen_since(self, since: datetime) -> list[ConversationSummary]:
        """:meth:`Store.conversations_seen_since` within the deadline."""
        return await self.call(self.store.conversations_seen_since(since))

    async def events_since(self, since: datetime, kinds: tuple[str, ...]) -> list[EventRecord]:
        """:meth:`Store.events_since` within the deadline."""
        return await self.call(self.store.events_since(since, kinds))

    async def replay_source(self, since: datetime, until: datetime, conv_id: str | None = None) -> ReplaySource:
        """:meth:`Store.replay_source` within the deadline."""
        return await self.call(self.store.replay_source(since, until, conv_id))
