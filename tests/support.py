"""Constants shared by the test modules."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
# A Tuesday morning in term time: the practice is open, no holiday nearby.
NOW = datetime(2026, 3, 3, 9, 0, tzinfo=PARIS)
