"""Writes batched per event-loop pass: what a pass logs or ends is written once, at its end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def flush_at_end_of_pass(flush: Callable[[], None]) -> asyncio.AbstractEventLoop | None:
    """Call ``flush`` at the end of this event-loop pass and return the loop; outside a running
    loop, call it now and return None."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        flush()
        return None
    loop.call_soon(flush)
    return loop
