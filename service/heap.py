"""The garbage collector of a long-running rdv process (the server, its span exporter)."""

from __future__ import annotations

import gc


def settle(young: int) -> None:
    """What the process built to start lives as long as it: collected once, then left out of
    the collector's scans (``gc.freeze``), which otherwise walk it all at each full
    collection. The youngest generation is examined after ``young`` more allocations than
    releases (Python's default, 700, when larger): what the process holds for a while (the
    turns in flight, a batch of spans waiting for export) is otherwise walked again and again
    by examinations that cannot free it. Reference cycles are still collected."""
    gc.collect()
    gc.freeze()
    current, middle, old = gc.get_threshold()
    gc.set_threshold(max(current, young), middle, old)
