"""Look-back windows: ``24h``, ``7d``… and where to start reading events for them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.engine.model import RdvError

DEFAULT_WINDOW = "24h"
MAX_WINDOW = timedelta(days=31)
EVENTS_LOOKBACK = timedelta(days=1)
_WINDOW = re.compile(r"(\d{1,5})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class StatsError(RdvError):
    """An operator input (window, log file) the answers cannot use; the message says why."""



@dataclass(frozen=True, slots=True)
class Window:
    """A look-back period such as ``24h``: the conversations last seen in it are counted."""

    label: str
    duration: timedelta

    def since(self, until: datetime) -> datetime:
        """The start of the window ending at ``until``."""
        return until - self.duration


def parse_window(raw: str | None, default: str = DEFAULT_WINDOW) -> Window:
    """``30m``, ``1h``, ``24h``, ``7d``… (at most 31 days); anything else is a StatsError."""
    text = (raw if raw is not None else default).strip().lower()
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise StatsError(
            f"window {raw!r} is not a duration like 1h, 24h or 7d (a number followed by m, h or d)"
        )
    amount = int(match.group(1))
    duration = timedelta(**{_UNITS[match.group(2)]: amount})
    if amount == 0 or duration > MAX_WINDOW:
        raise StatsError(f"window {raw!r} must be longer than zero and at most 31 days")
    return Window(text, duration)


def events_since(rows: Sequence[Mapping[str, Any]], since: datetime) -> datetime:
    """Where to start reading events so that conversations of the window are seen whole:
    the oldest start among them, but no more than a day before the window (a call or chat
    lasts minutes; an older start is a conversation kept open, not worth a long scan)."""
    starts: list[datetime] = [r["created_at"] for r in rows if isinstance(r.get("created_at"), datetime)]
    earliest: datetime = min([since, *starts])
    return max(earliest, since - EVENTS_LOOKBACK)

