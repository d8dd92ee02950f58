"""The practice's agenda: rdv's own bookings (``builtin``), a CalDAV calendar, a busy feed."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from service.calendars.base import (
    Appointment,
    BuiltinCalendar,
    Calendar,
    CalendarBusyError,
    CalendarError,
    CalendarInfo,
    OwnEvent,
    Written,
)
from service.config import Settings, calendar_password
from service.engine.practice import Practice
from telemetry.client import ClientCalls


def open_calendar(
    practice: Practice,
    settings: Settings,
    telemetry: object | None,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Calendar:
    """The calendar the practice file's ``[calendar]`` asks for (not opened yet); raises
    ConfigError when the password variable it names is unset."""
    source = practice.calendar
    if not source.external:
        return BuiltinCalendar()
    calls = ClientCalls(telemetry) if telemetry is not None else None
    timeout = settings.calendar_timeout_seconds
    if source.kind == "caldav":
        from service.calendars.caldav import CaldavCalendar

        return CaldavCalendar(source, calendar_password(source, env), practice, timeout, calls, transport=transport)
    from service.calendars.dav import DavClient
    from service.calendars.feed import FeedCalendar

    assert source.busy_ics_url is not None
    return FeedCalendar(source.busy_ics_url, practice, DavClient(None, None, timeout, calls, transport))


__all__ = [
    "Appointment", "BuiltinCalendar", "Calendar", "CalendarBusyError", "CalendarError", "CalendarInfo",
    "OwnEvent", "Written", "open_calendar",
]
