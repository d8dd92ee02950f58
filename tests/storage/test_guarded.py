"""The store as routes read it (:class:`GuardedStore`): a call that does not answer in time, or
fails, becomes StoreUnavailableError and is counted; the turn's own outcomes pass through."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.storage import open_store
from service.storage.base import ConcurrentTurnError, SlotTakenError, StoreError
from service.storage.guarded import SCAN_TIMEOUT_FACTOR, GuardedStore, StoreUnavailableError, guard


class Counted:
    """What the guard tells of each failure (telemetry's ``store_unavailable`` in the service)."""

    def __init__(self) -> None:
        self.failures = 0

    def __call__(self) -> None:
        self.failures += 1


async def test_a_call_that_never_answers_is_unavailable_and_counted() -> None:
    counted = Counted()
    never = asyncio.Event()
    with pytest.raises(StoreUnavailableError, match="in time"):
        await guard(never.wait(), 0.05, counted)
    assert counted.failures == 1


@pytest.mark.parametrize("error", [StoreError("disk I/O error"), ConnectionRefusedError(111, "refused")])
async def test_a_failing_call_is_unavailable_and_counted(error: Exception) -> None:
    counted = Counted()

    async def fails() -> None:
        raise error

    with pytest.raises(StoreUnavailableError):
        await guard(fails(), 5, counted)
    assert counted.failures == 1


@pytest.mark.parametrize("outcome", [ConcurrentTurnError("version moved"), SlotTakenError("taken")])
@pytest.mark.parametrize("timer", [True, False])
async def test_the_turns_own_outcomes_pass_through_uncounted(outcome: Exception, timer: bool) -> None:
    counted = Counted()

    async def lost() -> None:
        raise outcome

    with pytest.raises(type(outcome)):
        await guard(lost(), 5, counted, timer=timer)
    assert counted.failures == 0


async def test_routes_read_a_real_store_through_it(tmp_path: Path) -> None:
    store = open_store(None, tmp_path)
    await store.open()
    try:
        guarded = GuardedStore(store, 2.0, Counted())
        assert await guarded.load("conv_unknown") is None
        assert await guarded.timeline("conv_unknown") is None
        assert await guarded.active_counts() == {}
        assert guarded.scans().timeout == 2.0 * SCAN_TIMEOUT_FACTOR and guarded.scans().store is store
    finally:
        await store.close()
