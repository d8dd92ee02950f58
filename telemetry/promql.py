"""PromQL of the contract: selectors, sums of increases, recorded names and the shares of the target table.

One writer for the alert rules (:mod:`telemetry.alerts`) and the dashboard
(:mod:`telemetry.dashboards`). A share is written once, over a *select* function: the rules
select series as they are, the dashboard narrows them to its ``$channel`` and ``$instance``
variables; both sum per channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from service.engine.states import BookingResult, Field, Outcome, State, TransferReason
from telemetry import names as n


def eq(label: str, value: str) -> str:
    """An exact-match label matcher: ``label="value"``."""
    return f'{label}="{value}"'


def selector(series: str, *matchers: str, **labels: str) -> str:
    """``series{matcher,…,label="value",…}`` (the plain name when there is nothing to match)."""
    parts = [*matchers, *(eq(key, value) for key, value in labels.items())]
    return f"{series}{{{','.join(parts)}}}" if parts else series


def increase(series_selector: str, window: str, by: str = "") -> str:
    """``sum [by (…)] (increase(selector[window]))``: events over ``window`` across instances."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({series_selector}[{window}]))"


def by_channel_increase(series_selector: str, window: str) -> str:
    """Events of ``series_selector`` over ``window``, summed per channel across instances."""
    return increase(series_selector, window, n.L_CHANNEL)


def record_name(ratio: str, kind: str) -> str:
    """Name of a recording rule: ``channel:rdv_<ratio>:<kind>`` (kind: n, ratio, wilson_*)."""
    return f"{n.L_CHANNEL}:{n.PREFIX}{ratio}:{kind}"


def number(value: float) -> str:
    """A threshold as PromQL writes it (no float noise)."""
    return repr(round(value, 8))


def long_bucket_matcher() -> str:
    """The ``le`` matcher of the ≤ 350-character bucket, whatever float spelling the exposition uses."""
    edge = n.LONG_SLOT_MESSAGE_CHARS
    return f'le=~"{edge}|{edge}.0"'


def purpose_matcher() -> str:
    """The ``purpose`` matcher of the conversion population (``names.CONVERSION_PURPOSES``)."""
    return f'{n.L_PURPOSE}=~"{"|".join(n.CONVERSION_PURPOSES)}"'


# --------------------------------------------------------------------------- shares
class Select(Protocol):
    """How a share selects a metric's series (``series``: one of its histogram series)."""

    def __call__(self, metric: n.Metric, *matchers: str, series: str | None = None) -> str:
        """The selector of ``metric`` with ``matchers``."""


def plain(metric: n.Metric, *matchers: str, series: str | None = None) -> str:
    """The rules' select: the series as they are."""
    return selector(series or metric.name, *matchers)


@dataclass(frozen=True)
class Share:
    """A share of the target table: ``events / total`` over a window, per channel."""

    key: str
    events: Callable[[str, Select], str]
    total: Callable[[str, Select], str]

    def expr(self, window: str, select: Select = plain) -> str:
        """The share on one line, as a panel queries it."""
        return f"({self.events(window, select)}) / ({self.total(window, select)})"


def _ended(w: str, s: Select) -> str:
    return by_channel_increase(s(n.CONVERSATIONS_ENDED), w)


def _booking_ended(w: str, s: Select) -> str:
    return by_channel_increase(s(n.CONVERSATIONS_ENDED, purpose_matcher()), w)


def _confirmed(w: str, s: Select) -> str:
    confirmed = eq(n.L_OUTCOME, Outcome.CONFIRMED.value)
    return by_channel_increase(s(n.CONVERSATIONS_ENDED, confirmed, purpose_matcher()), w)


def _attempts(w: str, s: Select) -> str:
    return by_channel_increase(s(n.BOOKING_ATTEMPTS), w)


def _slot_taken(w: str, s: Select) -> str:
    return by_channel_increase(s(n.BOOKING_ATTEMPTS, eq(n.L_RESULT, BookingResult.SLOT_TAKEN.value)), w)


def _anti_loop(w: str, s: Select) -> str:
    return by_channel_increase(s(n.ANTI_LOOP), w)


def _phone_requests(w: str, s: Select) -> str:
    # Callers asked for a number: every entry into QUALIF_PHONE, whatever the state before.
    return by_channel_increase(s(n.STATE_TRANSITIONS, eq(n.L_TO, State.QUALIF_PHONE.value)), w)


def _phone_limits(w: str, s: Select) -> str:
    return by_channel_increase(s(n.RECOVERY_LIMITS, eq(n.L_FIELD, Field.PHONE.value)), w)


def _no_slot_transfers(w: str, s: Select) -> str:
    return by_channel_increase(s(n.TRANSFERS, eq(n.L_REASON, TransferReason.NO_SLOT.value)), w)


def _slot_messages(w: str, s: Select) -> str:
    metric = n.SLOTS_MESSAGE_LENGTH
    return by_channel_increase(s(metric, series=f"{metric.name}_count"), w)


def _long_slot_messages(w: str, s: Select) -> str:
    # Every message minus those in the bucket that ends on the threshold.
    metric = n.SLOTS_MESSAGE_LENGTH
    short = s(metric, long_bucket_matcher(), series=f"{metric.name}_bucket")
    return f"{_slot_messages(w, s)} - {by_channel_increase(short, w)}"


def _calendar_requests(w: str, s: Select) -> str:
    return by_channel_increase(s(n.CALENDAR_REQUESTS), w)


def _calendar_failures(w: str, s: Select) -> str:
    # Calendar requests have no channel: the sum keeps one series, with an empty channel.
    failed = "|".join(n.CALENDAR_FAILURES)
    return by_channel_increase(s(n.CALENDAR_REQUESTS, f'{n.L_RESULT}=~"{failed}"'), w)


SHARES: Final = {
    share.key: share
    for share in (
        Share("conversion", _confirmed, _booking_ended),
        Share("slot_taken", _slot_taken, _attempts),
        Share("anti_loop", _anti_loop, _ended),
        Share("phone_recovery", _phone_limits, _phone_requests),
        Share("long_slot_messages", _long_slot_messages, _slot_messages),
        Share("no_slot", _no_slot_transfers, _ended),
        Share("calendar_failures", _calendar_failures, _calendar_requests),
    )
}
