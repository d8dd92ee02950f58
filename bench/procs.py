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


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) spent by ``pid`` and its children already reaped; None when
    it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14-17 of proc(5) (utime, stime, cutime, cstime), counted after ``comm``.
    return sum(int(v) for v in fields[11:15]) / _TICK


def named_cpu_seconds(name: str) -> float | None:
    """CPU seconds (user + system) spent so far by every process of this machine whose
    command name is ``name`` (``postgres``: a local PostgreSQL server, its postmaster and
    every backend and auxiliary process), None when there is none."""
    found: list[float] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != name:
                    continue
        except OSError:
            continue
        spent = process_cpu_seconds(int(entry))
        if spent is not None:
            found.append(spent)
    return sum(found) if found else None
