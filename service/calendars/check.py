"""``rdv check-config``'s visit to the calendar: connect, find it, count what it holds."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.calendars import open_calendar
from service.config import Settings
from service.engine.practice import Practice


async def describe_calendar(practice: Practice, settings: Settings) -> str:
    """One line: the calendar found and its events over the horizon; CalendarError when it
    cannot be reached or found."""
    calendar = open_calendar(practice, settings, None)
    try:
        await calendar.open()
        now = datetime.now(practice.timezone)
        info = await calendar.describe(now, now + timedelta(days=practice.horizon_days))
    finally:
        await calendar.close()
    where = f" at {info.url}" if info.url else ""
    return (f"calendar ({info.kind}): {info.name!r}{where}, {info.events} event(s) in the next "
            f"{practice.horizon_days} days")
