"""Operator answers: booking stats, the seed's target table and its diagnosis checklist.

Pure functions, no I/O and no clock: callers pass the store's rows and events (or the lines
of a log file) and the time. The same per-conversation facts are built from either source,
so ``GET /api/stats/bookings``, ``GET /api/diagnose`` and ``rdv diagnose --logs`` agree.

Definitions (seed §5.5, over conversations whose ``last_seen_at`` falls in the window):

* ``total_sessions``: conversations in the window;
* ``confirmed_bookings``, ``transferred``, ``intent_router``: conversations by outcome
  (a conversation still waiting in the fallback menu counts as ``intent_router``);
* ``conversion_rate`` = confirmed / ``booking_sessions``, in percent, where the booking
  sessions are the conversations whose purpose is in ``telemetry.names.CONVERSION_PURPOSES``
  (book, move, or ended before saying what for): cancellations and information-only calls are
  not failed bookings and are reported apart (``cancellations``, ``information_calls``); the
  alerts and the dashboard use the same population;
* ``conversion_rate_all_sessions`` = confirmed / total, in percent: the manual's own figure;
* test conversations (``rdv probe``, ``rdv simulate``: ids starting ``synthetic-``) are left out
  of every figure and only counted (``synthetic_sessions``);
* ``abandon_rate`` = abandoned / total, in percent, where abandoned means the call ended
  (the caller hung up) or expired without any other outcome. Cancelled appointments and
  conversations still in progress are neither conversions nor abandons.

The package, one module per idea: :mod:`.windows` (look-back periods), :mod:`.facts` (one
conversation's facts and their fold), :mod:`.causes` (why a call was lost, what the manual
recommends), :mod:`.logs` (log files read into facts), :mod:`.reports` (the answers).
"""

from __future__ import annotations

from service.stats.causes import (
    FAILURE_CAUSES,
    NOT_FAILURES,
    OTHER_LABELS,
    OTHER_RECOMMENDATIONS,
    PATTERNS,
    RECOMMENDATIONS,
    TRANSFER_CAUSES,
    Advice,
    Cause,
    Recommendation,
    advice,
    cause_label,
    cause_of,
)
from service.stats.facts import EVENT_KINDS, CallFacts, facts_from_store
from service.stats.logs import LogRecord, facts_from_log, parse_log_line
from service.stats.reports import TARGETS, Target, bookings, diagnose, targets
from service.stats.windows import (
    DEFAULT_WINDOW,
    EVENTS_LOOKBACK,
    MAX_WINDOW,
    StatsError,
    Window,
    events_since,
    parse_window,
)

__all__ = [
    "DEFAULT_WINDOW", "EVENTS_LOOKBACK", "EVENT_KINDS", "FAILURE_CAUSES", "MAX_WINDOW", "NOT_FAILURES",
    "OTHER_LABELS", "OTHER_RECOMMENDATIONS", "PATTERNS", "RECOMMENDATIONS", "TARGETS", "TRANSFER_CAUSES",
    "Advice", "CallFacts", "Cause", "LogRecord", "Recommendation", "StatsError", "Target", "Window", "advice",
    "bookings",
    "cause_label", "cause_of", "diagnose", "events_since", "facts_from_log", "facts_from_store",
    "parse_log_line", "parse_window", "targets",
]
