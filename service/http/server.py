"""uvicorn with a graceful drain: on SIGTERM readiness turns false first, then the server stops.

Load balancers see ``/readyz`` fail for ``drain_seconds`` while in-flight and late turns are
still served; then uvicorn stops accepting, lets in-flight requests finish, and exits.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import uvicorn

from service.http.common import Services
from service.http.front import Served
from telemetry import names


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM/SIGINT marks the service as draining."""

    def __init__(self, config: uvicorn.Config, services: Services, drain_seconds: float) -> None:
        # uvicorn bounds idle keep-alive connections but not a body trickled byte by byte;
        # caller turns skip the proxy headers, which they never read (service.http.front).
        trusted = config.forwarded_allow_ips if config.proxy_headers else None
        config.proxy_headers = False
        config.app = Served(config.app, trusted_hosts=trusted)  # type: ignore[arg-type]
        super().__init__(config)
        self.services = services
        self.drain_seconds = drain_seconds
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: not ready, then stop after the drain delay; a second one stops now."""
        if self.services.draining or self.drain_seconds <= 0:
            if self._timer is not None:
                self._timer.cancel()
            super().handle_exit(sig, frame)
            return
        self.services.draining = True
        self.services.telemetry.log_event(names.LOG_DRAINING, signal=signal.Signals(sig).name,
                                          seconds=self.drain_seconds)
        self._timer = threading.Timer(self.drain_seconds, self._stop, (sig, frame))
        self._timer.daemon = True
        self._timer.start()

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        """End of the drain: stop serving; the signal was handled, so exit 0 afterwards."""
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals once stopped (exit status -15); a drained stop
        # is a clean exit, the one orchestrators expect from a graceful shutdown.
        self._captured_signals.clear()
