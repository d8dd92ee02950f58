"""The bench's CPU reading of processes found by command name (a local database server's)."""

from __future__ import annotations

import time
from pathlib import Path

from bench.procs import named_cpu_seconds


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
