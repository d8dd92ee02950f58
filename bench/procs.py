"""The bench's view of a server's processes (uvicorn workers, the span exporter), read from /proc."""

from __future__ import annotations

import contextlib
import os


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (none once it has exited)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(c) for c in f.read().split())
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children(current))
    return found
