"""The bench's CPU readings: processes found by command name (a local database server's), and
the time a virtual machine's host stole."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.procs import StealMeter, machine_cpu_ticks, named_cpu_seconds


def test_processes_are_found_by_command_name_and_their_cpu_summed() -> None:
    """This process's own command name finds at least this process's CPU time; a name no
    process has finds nothing."""
    name = Path("/proc/self/comm").read_text().strip()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    found = named_cpu_seconds(name)
    assert found is not None and found >= 0.05
    assert named_cpu_seconds("no-such-process-name") is None


# /proc/stat of a virtual machine (proc(5)): user nice system idle iowait irq softirq steal guest guest_nice.
STAT = """cpu  1000 20 300 8000 50 0 30 600 400 0
cpu0 500 10 150 4000 25 0 15 300 200 0
cpu1 500 10 150 4000 25 0 15 300 200 0
intr 12345
"""


def test_stolen_ticks_are_read_from_the_machine_line_and_guest_time_is_not_counted_twice() -> None:
    """The ``cpu`` line's eighth value is the stolen time; the total is the first eight values
    (guest time is already inside user time)."""
    assert machine_cpu_ticks(STAT) == (600, 1000 + 20 + 300 + 8000 + 50 + 0 + 30 + 600)
    with pytest.raises(ValueError):
        machine_cpu_ticks("intr 1\n")


def test_the_steal_meter_reads_a_share_of_this_machines_time() -> None:
    """Between two readings of this machine's own /proc/stat, the stolen share is a fraction."""
    meter = StealMeter()
    deadline = time.monotonic() + 0.1
    while time.monotonic() < deadline:
        pass
    share = meter.share()
    assert share is not None and 0.0 <= share <= 1.0
