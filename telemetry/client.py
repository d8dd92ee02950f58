"""Telemetry of rdv's requests to the practice's calendar: one client span and two metrics each.

The span follows OpenTelemetry's HTTP client conventions (named by the method, ``url.full``,
``server.address``, ``http.response.status_code``, ``error.type``) and is a child of whatever
span is current: the turn loop makes the state span that asked current (see
:meth:`telemetry.observer.TurnScope.under_state`). No patient data goes into attributes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind, Status, StatusCode

from telemetry import names as n


@dataclass(slots=True)
class CallRecord:
    """Filled in by the caller while the request runs: the HTTP status and the result."""

    status: int | None = None
    result: str = n.CALENDAR_OK
    error_type: str | None = None


class ClientCalls:
    """Spans and metrics of the calendar requests, for one :class:`telemetry.Telemetry`."""

    def __init__(self, telemetry: Any) -> None:
        self.tel = telemetry

    @contextlib.contextmanager
    def request(self, operation: str, method: str, url: str) -> Iterator[CallRecord]:
        """Time one request; an exception leaving the block counts as ``error`` unless the
        record already says how it failed (``timeout``, ``unreachable``)."""
        record = CallRecord()
        span: Any = None
        if self.tel.tracing:
            parts = urlsplit(url)
            attributes: dict[str, Any] = {
                n.A_HTTP_METHOD: method,
                n.A_URL_FULL: parts._replace(query="", fragment="").geturl(),
                n.A_SERVER_ADDRESS: parts.hostname or "",
                n.A_CALENDAR_OPERATION: operation,
            }
            if parts.port is not None:
                attributes[n.A_SERVER_PORT] = parts.port
            span = self.tel.tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
        started = time.perf_counter()
        try:
            yield record
        except BaseException as exc:
            if record.result in (n.CALENDAR_OK, n.CALENDAR_CONFLICT):
                record.result = "error"
            record.error_type = record.error_type or type(exc).__name__
            raise
        finally:
            elapsed = time.perf_counter() - started
            metrics = self.tel.metrics
            metrics.inc(n.CALENDAR_REQUESTS, operation, record.result)
            metrics.observe(n.CALENDAR_DURATION, elapsed, None, operation)
            if span is not None:
                if record.status is not None:
                    span.set_attribute(n.A_HTTP_STATUS, record.status)
                if record.error_type is None and record.status is not None and record.status >= 400:
                    record.error_type = str(record.status)
                if record.result != n.CALENDAR_OK:
                    span.set_attribute(n.A_ERROR_TYPE, record.error_type or record.result)
                if record.result in n.CALENDAR_FAILURES:
                    span.set_status(Status(StatusCode.ERROR, record.result))
                span.end()
