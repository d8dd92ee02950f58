"""The caller-turn routes answered before Starlette's stack (:mod:`service.http.front`) answer
exactly as their Starlette endpoints behind the middleware stack and the router: same status,
headers and bytes for every refusal (authentication, ids, headers, bodies, limits, the body
deadline), for an unavailable store and an unexpected error, and for served turns, which
write the same log lines, metrics and spans in the conversation's trace.

Each case is played twice on two apps built alike (own store, telemetry and fixed clock):
once as served (the front), once through ``Starlette.__call__`` (the stack the front skips).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Match
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from service.clock import FixedClock
from service.config import load_settings
from service.http.app import RdvApp, create_app
from service.http.common import ApiError, BodyReadDeadline
from service.http.front import Served, trusted_proxies
from service.http.routes import post_message
from service.storage.guarded import StoreUnavailableError
from service.vapi.routes import chat_completions
from telemetry import names
from tests.support import NOW
from tests.telemetry.conftest import Captured

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
TEXT = "/api/conversations/{}/messages"
CHAT = "/vapi/chat/completions"
PHONE = "+33612345678"


@dataclass(frozen=True)
class Exchange:
    """What the client saw (and what the server raised, for the server to log)."""

    status: int | None
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raised: str | None


async def exchange(
    app: App, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes] | None,
    *, method: str = "POST", stall: bool = False, disconnect: bool = False, root_path: str = "",
) -> Exchange:
    """One request as uvicorn hands it over: ``chunks`` of body (the last one ends it; None: the
    client never sends a byte), then, when ``stall``, a client that stops sending, or with
    ``disconnect`` one that goes away."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "scheme": "http", "method": method,
        "root_path": root_path, "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(b"host", b"rdv.test"), *headers], "state": {},
    }
    queue: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": stall or disconnect or i < len(chunks) - 1}
        for i, chunk in enumerate(chunks or [])
    ]
    if disconnect:
        queue.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.Event().wait()  # a client that sends nothing more
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raised = None
    try:
        await app(scope, receive, send)
    except Exception as exc:  # noqa: BLE001 - what the server would log
        raised = type(exc).__name__
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    return Exchange(
        start["status"] if start else None, list(start["headers"]) if start else [],
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), raised,
    )


class Pair:
    """Two apps built alike: ``fast`` (as served) and ``slow`` (through Starlette's stack)."""

    def __init__(self, fast: RdvApp, slow: RdvApp, captured: tuple[Captured, Captured]) -> None:
        self.apps = (fast, slow)
        self.captured = captured

    @property
    def fast(self) -> App:
        return self.apps[0]  # type: ignore[return-value]

    @property
    def slow(self) -> App:
        app = self.apps[1]

        async def through_starlette(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await Starlette.__call__(app, scope, receive, send)

        return through_starlette

    async def both(self, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes] | None,
                   **options: Any) -> Exchange:
        """The exchange, asserted the same on both apps."""
        fast = await exchange(self.fast, path, headers, chunks, **options)
        slow = await exchange(self.slow, path, headers, chunks, **options)
        assert fast == slow, (path, headers, chunks)
        return fast

    def patch(self, name: str, value: Callable[[Any], Any]) -> None:
        """Replace ``svc.turns.<name>`` on both apps by ``value(app's turns)``."""
        for app in self.apps:
            turns = app.state.services.turns
            setattr(turns, name, value(turns))


@pytest.fixture
def pair(tmp_path: Path) -> Callable[..., Any]:
    """``async with pair(env) as p``: two live apps with the same settings."""

    @contextlib.asynccontextmanager
    async def factory(env: dict[str, str] | None = None) -> AsyncIterator[Pair]:
        apps, caps = [], []
        for _ in ("fast", "slow"):
            cap = Captured()
            settings = load_settings({"RDV_DATA_DIR": tempfile.mkdtemp(dir=tmp_path), **(env or {})})
            apps.append(create_app(settings, clock=FixedClock(NOW), telemetry=cap.telemetry, reaper=False))
            caps.append(cap)
        async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
            yield Pair(apps[0], apps[1], (caps[0], caps[1]))

    return factory


JSON = [(b"content-type", b"application/json")]


def body(value: Any) -> list[bytes]:
    return [json.dumps(value).encode()]


def chat_body(text: str | None = "je voudrais un rendez-vous", stream: bool = True, call_id: str = "call-1",
              **extra: Any) -> list[bytes]:
    messages = [{"role": "system", "content": "Tu es l'assistante."}, {"role": "assistant", "content": "Bonjour"}]
    if text is not None:
        messages.append({"role": "user", "content": text})
    return body({"model": "rdv", "stream": stream, "messages": messages,
                 "call": {"id": call_id, "customer": {"number": PHONE}}, **extra})


def length(chunks: list[bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(sum(map(len, chunks))).encode())]


async def test_text_turns_and_refusals_answer_as_starlette(pair: Callable[..., Any]) -> None:
    """Served turns (with ids, keys, phones, replays) and every refusal of the text API."""
    async with pair({"RDV_MAX_BODY_BYTES": "4096"}) as p:
        path = TEXT.format("conv_front")
        ok = await p.both(path, JSON, body({"text": "bonjour je voudrais prendre rendez-vous",
                                            "caller_phone": PHONE}))
        assert ok.status == 200 and json.loads(ok.body)["turn"] == 1
        keyed = [*JSON, (b"idempotency-key", b"key-1")]
        for _ in range(2):  # the second is a replay
            assert (await p.both(path, keyed, body({"text": "Jean Dupont"}))).status == 200
        assert (await p.both(path, JSON, body({"text": "le matin", "request_id": "r1", "channel": "voice"}))).status \
            == 200
        # The body in several chunks, with and without a declared length.
        chunks = [b'{"text": "le premier', b'", "request_id"', b': "r2"}']
        assert (await p.both(path, JSON, chunks)).status == 200
        assert (await p.both(path, [*JSON, *length(chunks)], chunks)).status == 200

        refusals: list[tuple[str, list[tuple[bytes, bytes]], list[bytes] | None, int]] = [
            (TEXT.format("a.b"), JSON, body({"text": "x"}), 400),
            (TEXT.format("x" * 129), JSON, body({"text": "x"}), 400),
            (TEXT.format("123e4567-e89b-12d3-a456-426614174000"), JSON, body({"text": "x"}), 404),
            (path, [(b"idempotency-key", "clé".encode("latin-1"))], body({"text": "x"}), 400),
            (path, [(b"idempotency-key", b"")], body({"text": "x"}), 400),
            (path, JSON, [b"not json"], 400),
            (path, JSON, [b""], 400),
            (path, JSON, [b"  "], 400),
            (path, JSON, [b"[1, 2]"], 400),
            (path, JSON, [b'{"text": NaN}'], 400),
            (path, JSON, [b'{"text": 1e999}'], 400),
            (path, JSON, [b'{"text": "\\ud800"}'], 400),
            (path, JSON, [b"[" * 70 + b"]" * 70], 400),
            (path, JSON, [b"\xff\xfe"], 400),
            (path, JSON, body({}), 422),
            (path, JSON, body({"text": 1}), 422),
            (path, JSON, body({"text": "x" * 2001}), 422),
            (path, JSON, body({"text": "x", "channel": "fax"}), 422),
            (path, JSON, body({"text": "x", "caller_phone": 6}), 422),
            (path, JSON, body({"text": "x", "caller_phone": "abc"}), 422),
            (path, JSON, body({"text": "x", "caller_phone": "+33 1"}), 422),
            (path, JSON, body({"text": "x", "request_id": "é"}), 422),
            (path, [(b"content-length", b"abc")], body({"text": "x"}), 400),
            (path, [(b"content-length", b"99999")], body({"text": "x"}), 413),
            (path, [], [b"{" + b" " * 3000, b" " * 3000 + b"}"], 413),
            # The first of repeated headers counts, as Starlette's Headers.get reads it.
            (path, [(b"content-length", b"99999"), (b"content-length", b"2")], [b"{}"], 413),
            (path, [(b"idempotency-key", b"ok"), (b"idempotency-key", "é".encode("latin-1"))], body({"text": "x"}),
             200),
        ]
        for where, headers, chunks_, status in refusals:
            seen = await p.both(where, headers, chunks_)
            assert seen.status == status, (where, headers, chunks_, seen)
            assert seen.raised is None
            if status >= 400:
                assert "error" in json.loads(seen.body)
        too_big = await p.both(path, [(b"content-length", b"99999")], body({"text": "x"}))
        assert (b"connection", b"close") in too_big.headers
        # A client gone before its body arrived: Starlette's 500, the error raised for the server's log.
        gone = await p.both(path, JSON, [b'{"te'], disconnect=True)
        assert (gone.status, gone.raised) == (500, "ClientDisconnect")


async def test_text_api_access_answers_as_starlette(pair: Callable[..., Any]) -> None:
    """Trusted, anonymous and wrong credentials; issued ids; the text API switched off."""
    async with pair({"RDV_TEXT_API_KEY": "s3cret"}) as p:
        # An id issued by one app is recognised by the other: both sign with the same secret.
        issued = json.loads((await exchange(p.fast, "/api/conversations", [], [b""])).body)["conv_id"]
        cases = [
            (issued, [], 200),
            ("conv_own", [(b"authorization", b"Bearer s3cret")], 200),
            ("conv_own", [(b"authorization", b"bearer  s3cret ")], 200),
            ("conv_own", [], 403),
            ("conv_own", [(b"authorization", b"Bearer wrong")], 401),
            ("conv_own", [(b"authorization", b"Basic czNjcmV0")], 401),
            ("conv_own", [(b"authorization", b"")], 401),
            ("conv_own", [(b"authorization", b"Bearer s3cret"), (b"authorization", b"Bearer wrong")], 200),
            (issued + "0", [], 403),
        ]
        for conv_id, headers, status in cases:
            seen = await p.both(TEXT.format(conv_id), [*JSON, *headers], body({"text": "bonjour",
                                                                             "caller_phone": PHONE}))
            assert seen.status == status, (conv_id, headers, seen)
    async with pair({"RDV_TEXT_API": "false"}) as p:
        seen = await p.both(TEXT.format("conv_off"), JSON, body({"text": "bonjour"}))
        assert seen.status == 404


async def test_chat_turns_and_refusals_answer_as_starlette(pair: Callable[..., Any]) -> None:
    """Vapi's custom-LLM requests: streamed and not, greeting, credential, malformed bodies."""
    async with pair({"RDV_VAPI_LLM_KEY": "llm-key", "RDV_VAPI_SECRET": "events-secret"}) as p:
        auth = [(b"authorization", b"Bearer llm-key")]
        streamed = await p.both(CHAT, [*JSON, *auth], chat_body())
        assert streamed.status == 200 and streamed.body.endswith(b"data: [DONE]\n\n")
        assert (b"content-type", b"text/event-stream; charset=utf-8") in streamed.headers
        assert (await p.both(CHAT, auth, chat_body(stream=False))).status == 200
        assert (await p.both(CHAT, auth, chat_body(text=None))).status == 200  # the greeting
        assert (await p.both(CHAT, auth, chat_body("le matin", call_id="call-2", stream=False))).status == 200
        cases: list[tuple[list[tuple[bytes, bytes]], list[bytes], int]] = [
            ([], chat_body(), 401),
            ([(b"authorization", b"Bearer wrong")], chat_body(), 401),
            ([(b"authorization", b"Bearer events-secret")], chat_body(), 401),
            (auth, [b"nope"], 400),
            (auth, body([]), 400),
            (auth, body({"messages": []}), 422),
            (auth, body({"messages": [{"role": "robot"}], "call": {"id": "c"}}), 422),
            (auth, body({"messages": [{"role": "user", "content": "x"}]}), 422),
            (auth, body({"messages": [{"role": "user", "content": "x"}], "call": {"id": "a b"}}), 422),
            (auth, chat_body(stream="yes"), 422),  # type: ignore[arg-type]
            ([*auth, (b"content-length", b"-1")], chat_body(), 200),
            ([*auth, (b"content-length", b"1x")], chat_body(), 400),
        ]
        for headers, chunks, status in cases:
            seen = await p.both(CHAT, headers, chunks)
            assert seen.status == status, (headers, chunks, seen)


async def test_store_outage_and_unexpected_errors_answer_as_starlette(pair: Callable[..., Any]) -> None:
    """An unavailable store: 503 with Retry-After on the text API, an apology and a transfer
    to Vapi; an unexpected error: Starlette's plain 500, raised on for the server's log."""

    def unavailable(_turns: Any) -> Any:
        async def handle(_req: Any) -> Any:
            raise StoreUnavailableError("store down (injected)")
        return handle

    def broken(_turns: Any) -> Any:
        async def handle(_req: Any) -> Any:
            raise ValueError("a bug (injected)")
        return handle

    def refusing(_turns: Any) -> Any:
        async def handle(_req: Any) -> Any:
            raise ApiError(409, "refused (injected)", close=True)
        return handle

    async with pair() as p:
        p.patch("handle", unavailable)
        down = await p.both(TEXT.format("conv_down"), JSON, body({"text": "bonjour"}))
        assert down.status == 503 and (b"retry-after", b"5") in down.headers
        transfer = await p.both(CHAT, JSON, chat_body(stream=False))
        assert transfer.status == 200 and b"transferCall" in transfer.body
        p.patch("handle", broken)
        for path, chunks in ((TEXT.format("conv_bug"), body({"text": "bonjour"})), (CHAT, chat_body())):
            bug = await p.both(path, JSON, chunks)
            assert (bug.status, bug.body, bug.raised) == (500, b"Internal Server Error", "ValueError")
        p.patch("handle", refusing)
        refused = await p.both(TEXT.format("conv_refused"), JSON, body({"text": "bonjour"}))
        assert refused.status == 409 and (b"connection", b"close") in refused.headers


async def test_body_deadline_answers_as_before(pair: Callable[..., Any]) -> None:
    """As served, a body that stops arriving (or never starts) gets the 408 of the body-read
    deadline and the connection closes, as through BodyReadDeadline and Starlette."""
    async with pair() as p:
        fast = Served(p.apps[0], seconds=0.05)
        slow = BodyReadDeadline(p.slow, seconds=0.05)
        for path, chunks in ((TEXT.format("conv_slow"), [b'{"text": "bon']), (CHAT, [b'{"mess']), (CHAT, None)):
            answers = [
                await asyncio.wait_for(exchange(app, path, JSON, chunks, stall=True), 10) for app in (fast, slow)
            ]
            assert answers[0] == answers[1]
            assert answers[0].status == 408 and (b"connection", b"close") in answers[0].headers
        # Served, a whole body is read as before, and the other routes answer through the stack.
        assert (await exchange(fast, TEXT.format("conv_ok"), JSON, body({"text": "bonjour"}))).status == 200
        assert (await exchange(fast, "/healthz", [], [b""], method="GET")).status == 200


async def test_one_timer_keeps_every_body_deadline(pair: Callable[..., Any]) -> None:
    """Overlapping body reads, served: each stalled one gets its 408 at its own deadline, in
    the order they started; the ones whose body arrived are served, and no timer is left."""
    async with pair() as p:
        served = Served(p.apps[0], seconds=0.3)
        finished: list[str] = []

        async def request(name: str, stall: bool) -> Exchange:
            chunks = [b'{"text": "bon'] if stall else body({"text": "bonjour"})
            seen = await asyncio.wait_for(exchange(served, TEXT.format(name), JSON, chunks, stall=stall), 10)
            finished.append(name)
            return seen

        first = asyncio.create_task(request("conv_a", True))
        await asyncio.sleep(0.1)
        served_now = await request("conv_b", False)
        second = asyncio.create_task(request("conv_c", True))
        assert served_now.status == 200
        assert (await first).status == 408
        assert not second.done()  # its own deadline is later
        assert (await second).status == 408
        assert finished == ["conv_b", "conv_a", "conv_c"]
        assert served.deadlines is not None and served.deadlines.timer is None
        assert not served.deadlines.queue


async def test_turns_write_the_same_logs_metrics_and_spans(pair: Callable[..., Any]) -> None:
    """A booking on the text API and a Vapi call: the same log lines, turn metrics and spans
    (names, attributes, traces) through the front as through Starlette."""
    async with pair() as p:
        path = TEXT.format("conv_spans")
        for text in ("bonjour je voudrais prendre rendez-vous", "Jean Dupont", "pas de préférence", "le premier"):
            await p.both(path, JSON, body({"text": text, "caller_phone": PHONE}))
        for text in ("je voudrais un rendez-vous", "Jean Dupont"):
            await p.both(CHAT, JSON, chat_body(text, call_id="call-spans"))
        fast, slow = p.captured
        await asyncio.sleep(0)  # the lines of the last pass are written at its end
        assert fast.lines() == slow.lines()
        for name in ("rdv_turn_duration_seconds_count", "rdv_turn_responses_total"):
            assert fast.sample(name) == slow.sample(name) > 0, name

        def spans(cap: Captured) -> list[tuple[Any, ...]]:
            return sorted(
                (s.name, s.context.trace_id, s.parent is None, s.kind,
                 sorted((k, v) for k, v in (s.attributes or {}).items() if "id" not in k.split(".")[-1]))
                for s in cap.exporter.get_finished_spans()
            )

        assert spans(fast) == spans(slow)
        assert Counter(s[0] for s in spans(fast))[names.SPAN_TURN] == 6


def test_front_takes_exactly_the_routes_starlette_gives_the_turn_endpoints(tmp_path: Path) -> None:
    """The front answers a request only if Starlette's router would hand it to one of the two
    turn endpoints, and all of those but the odd ones left to the stack; anything else (other
    methods, near-miss paths) goes through the stack."""
    app = create_app(load_settings({"RDV_DATA_DIR": str(tmp_path)}), reaper=False)
    assert app.turn_front is not None
    paths = [
        TEXT.format("conv_1"), TEXT.format("a" * 300), TEXT.format("a.b"), TEXT.format("é"),
        TEXT.format("conv_1") + "\n", TEXT.format(""), TEXT.format("a/b"), "/api/conversations/messages",
        TEXT.format("conv_1") + "/", CHAT, CHAT + "\n", CHAT + "/", "/vapi/chat", "/vapi/events", "/healthz",
        "/api/conversations",
    ]
    for path in paths:
        for method in ("POST", "GET", "PUT", "HEAD"):
            for root_path in ("", "/rdv"):
                scope = {"type": "http", "method": method, "path": root_path + path, "root_path": root_path,
                         "headers": []}
                endpoint = None
                for route in app.router.routes:
                    match, child = route.matches(dict(scope))
                    if match is Match.FULL:
                        endpoint = child.get("endpoint")
                        break
                fast = app.turn_front.route(scope) is not None
                by_starlette = endpoint in (post_message, chat_completions)
                # A root path, or a path that Starlette's ``$`` matches before a final newline,
                # takes the stack: the front never claims more than Starlette would.
                expected = by_starlette and not root_path and not path.endswith("\n")
                assert fast == expected, (method, root_path, path, endpoint)
    # The front answers errors as these handlers do (and raises any other error on, as Starlette).
    assert set(app.exception_handlers) == {ApiError, StoreUnavailableError}


def test_served_handles_proxy_headers_as_uvicorn_did() -> None:
    """uvicorn's own default list of trusted proxies, and its middleware on the other routes."""
    import uvicorn

    assert trusted_proxies() == uvicorn.Config(app=None).forwarded_allow_ips  # type: ignore[arg-type]
    served = Served(Starlette(), trusted_hosts="127.0.0.1")
    assert isinstance(served.rest, ProxyHeadersMiddleware)
    assert isinstance(Served(Starlette()).rest, BodyReadDeadline)


class Wire(asyncio.Transport):
    """A connection's server side as uvicorn's protocol writes to it: every write kept."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def on_the_wire(app: App, requests: list[bytes]) -> tuple[list[bytes], bool]:
    """The writes of uvicorn's httptools protocol (as ``rdv serve`` configures it) answering
    ``requests`` one after the other on one connection, and whether it closed it."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from service.http.connections import BoundedHttpToolsProtocol

    state = ServerState()
    state.default_headers = [(b"date", b"Mon, 30 Nov 2026 10:00:00 GMT"), (b"server", b"uvicorn")]
    config = Config(app, proxy_headers=False, lifespan="off", log_level="warning", access_log=False)
    protocol = BoundedHttpToolsProtocol(config, state, {}, header_timeout=5, max_header_bytes=16384)
    wire = Wire()
    protocol.connection_made(wire)
    try:
        for request in requests:
            protocol.data_received(request)
            await asyncio.wait_for(asyncio.gather(*protocol.tasks), 10)
        closed = wire.closed
    finally:
        protocol.connection_lost(None)
    return wire.writes, closed


def post(path: str, chunks: list[bytes], *headers: bytes, version: bytes = b"1.1") -> bytes:
    data = b"".join(chunks)
    head = [b"POST " + path.encode() + b" HTTP/" + version, b"Host: rdv.test", b"Content-Type: application/json",
            b"Content-Length: " + str(len(data)).encode(), *headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + data


async def test_turn_answers_on_the_wire_as_uvicorn_writes_them(pair: Callable[..., Any]) -> None:
    """Through uvicorn's own protocol, a served turn's answer is written in one write, the same
    bytes uvicorn writes from the ASGI messages (in two), on connections kept alive or closed
    (asked by the client, or HTTP/1.0); refusals are written as uvicorn writes them."""
    async with pair({"RDV_VAPI_LLM_KEY": "llm-key"}) as p:
        one, messages = Served(p.apps[0]), Served(p.apps[1])

        async def through_messages(scope: dict[str, Any], receive: Any, send: Any) -> None:
            async def forward(message: Any) -> None:
                await send(message)

            await messages(scope, receive, forward)

        text, auth = TEXT.format("conv_wire"), b"Authorization: Bearer llm-key"
        conversations = [
            [post(text, body({"text": "bonjour", "caller_phone": PHONE})), post(text, body({"text": "Jean Dupont"})),
             post(text, body({"text": "x", "channel": "fax"})), post(text, body({"text": "le matin"}))],
            [post(text, body({"text": "le premier"}), b"Connection: close")],
            [post(text, body({"text": "oui"}), version=b"1.0")],
            [post(CHAT, chat_body(), auth), post(CHAT, chat_body("le matin", stream=False), auth),
             post(CHAT, chat_body(), b"Authorization: Bearer nope")],
        ]
        for requests, closing in zip(conversations, (False, True, True, False), strict=True):
            fast, fast_closed = await on_the_wire(one, requests)
            slow, slow_closed = await on_the_wire(through_messages, requests)
            assert b"".join(fast) == b"".join(slow) and fast_closed == slow_closed == closing
            answers = b"".join(fast).count(b"HTTP/1.1 ")
            refused = b"".join(fast).count(b"HTTP/1.1 4")
            assert answers == len(requests) and refused == (len(requests) > 1)
            assert len(fast) == answers + refused and len(slow) == 2 * answers  # one write per turn answered


async def test_served_app_settles_the_heap_once_started() -> None:
    """When the app says it has started, what start-up built is frozen out of the collector's
    scans and the youngest generation is examined less often."""
    import gc

    from service.http.front import GC_YOUNG_THRESHOLD

    seen: list[tuple[str, int, int]] = []
    threshold = gc.get_threshold()
    lifespan = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, Any]:
        return lifespan.pop(0)

    async def send(message: dict[str, Any]) -> None:
        seen.append((message["type"], gc.get_freeze_count(), gc.get_threshold()[0]))

    started = Starlette()
    try:
        gc.set_threshold(700, *threshold[1:])
        await Served(started)({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert [kind for kind, _, _ in seen] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen[0][1] > 0 and seen[0][2] == GC_YOUNG_THRESHOLD
