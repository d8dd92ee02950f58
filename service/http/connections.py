"""Connection limits: uvicorn's own, plus the two it lacks (a deadline and a size limit on
the request head).

uvicorn (0.54) bounds a connection's idle time only *after* a response (``timeout_keep_alive``)
and has no header-read timeout: a client that connects and says nothing, or sends its
headers a byte at a time, holds a socket and a file descriptor forever (21,000 such sockets
exhausted the file limit once). With httptools, nothing bounds the size of a head still being
received either (``h11_max_incomplete_event_size`` applies to the h11 protocol only). The
smallest correct fix is a subclass of uvicorn's httptools protocol that

* arms uvicorn's keep-alive timer as soon as a connection is made, so a connection that
  never sends a byte is closed after ``RDV_KEEP_ALIVE_SECONDS`` like an idle kept-alive one;
* gives each request head ``RDV_HEADER_TIMEOUT_SECONDS`` from its first byte (408 and close);
* refuses a head larger than ``RDV_MAX_HEADER_BYTES`` (431 and close).

A refused connection closes gracefully (a lingering close, :data:`LINGER_SECONDS`), so that a
client still sending reads the answer instead of a reset.

The body has its own deadline (:class:`service.http.common.BodyReadDeadline`); concurrency
above ``RDV_MAX_CONNECTIONS`` gets uvicorn's 503 (``limit_concurrency``).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.config import Settings

# After a refusal, how long what the client still sends is read and dropped, waiting for it
# to close, before the connection is closed anyway.
LINGER_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long and how large a connection may be before it is closed."""

    keep_alive_seconds: int
    header_timeout_seconds: float
    max_header_bytes: int
    max_connections: int

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        """The limits configured in ``settings``."""
        return cls(
            keep_alive_seconds=settings.keep_alive_seconds,
            header_timeout_seconds=settings.header_timeout_seconds,
            max_header_bytes=settings.max_header_bytes,
            max_connections=settings.max_connections,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """The ``uvicorn.Config`` options that enforce these limits."""
        return {
            "http": functools.partial(
                BoundedHttpToolsProtocol,
                header_timeout=self.header_timeout_seconds,
                max_header_bytes=self.max_header_bytes,
            ),
            "timeout_keep_alive": self.keep_alive_seconds,
            "limit_concurrency": self.max_connections,
            # Used only if the h11 protocol is ever selected; httptools is bounded below.
            "h11_max_incomplete_event_size": self.max_header_bytes,
        }


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with an idle timer from the first moment and a deadline
    and a size limit on each request head."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float,
        max_header_bytes: int,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._in_head = True  # waiting for, or reading, a request head
        self._heads = 0  # request heads read so far
        # Refused: the answer is sent, what arrives is dropped until the client closes.
        self._lingering = False
        self._linger_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection and start its idle timer at once."""
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the head deadline (and a refused connection's last wait) with the connection."""
        self._cancel_head_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Count and time the bytes of a request head; refuse it when too large.

        The head's deadline runs from its first bytes, but its timer is armed only if the head
        is still incomplete once they are parsed: a head that arrives whole (nearly every one)
        would have it armed and cancelled at once, which costs more than parsing it. Once a
        request is refused, what still arrives is dropped (:meth:`_linger`)."""
        if self._lingering:
            return
        if not self._in_head:
            super().data_received(data)
            return
        self._head_bytes += len(data)
        due = self.loop.time() + self.header_timeout if self._head_timer is None else None
        heads = self._heads
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_header_bytes:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                         f"request head larger than {self.max_header_bytes} bytes")
        elif due is not None and heads == self._heads:  # this head is still coming
            self._head_timer = self.loop.call_at(due, self._head_timed_out)

    def on_headers_complete(self) -> None:
        """The head is in: stop its clock, then let uvicorn start the request."""
        self._in_head = False
        self._heads += 1
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The body is in: the next bytes begin another request head."""
        super().on_message_complete()
        self._in_head = True

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT,
                         f"request head not received within {self.header_timeout:g} seconds")

    def _refuse(self, status: HTTPStatus, message: str) -> None:
        """Answer ``status`` with a JSON error like the app's, and close the connection."""
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        if self.transport.is_closing():
            return
        body = ('{"error": "' + message + '"}').encode("ascii")
        head = [f"HTTP/1.1 {status.value} {status.phrase}".encode("ascii")]
        head.extend(name + b": " + value for name, value in self.server_state.default_headers)
        head += [b"content-type: application/json", b"content-length: " + str(len(body)).encode("ascii"),
                 b"connection: close"]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self._linger()

    def _linger(self) -> None:
        """Close after an answer sent before the request was read whole: the answer is
        followed by the end of what the server sends, then what the client still sends is
        read and dropped until it closes too, LINGER_SECONDS at most. Closed at once, the
        socket would answer those bytes with a reset, and the client's system drops what it
        received and had not read yet: the answer (nginx's and Apache's lingering close)."""
        transport = self.transport
        if not transport.can_write_eof():
            transport.close()
            return
        self._lingering = True
        transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, transport.close)
