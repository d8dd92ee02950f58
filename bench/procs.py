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


def machine_cpu_ticks(stat: str | None = None) -> tuple[int, int]:
    """(ticks stolen, ticks in all) of every CPU of this machine so far, from ``/proc/stat``'s
    ``cpu`` line (``stat``: that file's text, read when not given). Stolen time (proc(5): the
    eighth value) is time a virtual CPU was ready to run while its host ran something else;
    guest time, already counted in user and nice, is not counted twice."""
    if stat is None:
        with open("/proc/stat") as f:
            stat = f.read()
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
            return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)
    raise ValueError("no cpu line in /proc/stat")


class StealMeter:
    """The share of this machine's CPU time stolen by its host between the meter's creation
    and :meth:`share`: on a shared virtual machine, what the latencies measured meanwhile
    owe to other tenants (an echo's p99 at 500/s read 2.5 ms in a quiet hour, 15 ms in a
    loud one, on the bench's machine)."""

    def __init__(self) -> None:
        self.stolen, self.total = machine_cpu_ticks()

    def share(self) -> float | None:
        """Stolen ÷ all CPU ticks since creation (None when no tick passed)."""
        stolen, total = machine_cpu_ticks()
        spent = total - self.total
        return round((stolen - self.stolen) / spent, 4) if spent > 0 else None
