"""French public holidays, from the ``holidays`` package (kept current by its maintainers)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays as _holidays


@lru_cache(maxsize=64)
def _year(year: int) -> frozenset[date]:
    return frozenset(_holidays.country_holidays("FR", years=year).keys())


def is_public_holiday(day: date) -> bool:
    """True on a French (metropolitan) public holiday."""
    return day in _year(day.year)
