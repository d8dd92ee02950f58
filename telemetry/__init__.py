"""rdv's observability: the contract (:mod:`telemetry.names`) and the one observer.

``Telemetry`` turns engine events into the seed's log lines, OpenTelemetry spans (one trace
per conversation) and Prometheus metrics.
"""

from telemetry.observer import Telemetry, TurnScope, ended_reason_category

__all__ = ["Telemetry", "TurnScope", "ended_reason_category"]
