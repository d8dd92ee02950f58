"""``python -m telemetry.sidecar``: the span exporter process of one rdv server.

Started by the server (:class:`telemetry.spans.SidecarSink`), it reads span records from
its standard input, rebuilds the OpenTelemetry SDK's spans and exports them in batches
with the SDK's own exporter (``--exporter otlp``: OTLP/HTTP, configured by the usual
``OTEL_EXPORTER_OTLP_*`` variables; ``console``: one JSON document per span on standard
output). Building and encoding happen here, never under the server's GIL.

It stops when its input ends, after exporting everything it read: when the server shuts
down cleanly (it closes the pipe and waits), and when the server dies (the system closes
it). Termination signals sent to the server's process group are ignored, so that a
``kill`` of the group lets the server finish its shutdown and hand over its last spans.
It runs at the lowest CPU priority (:data:`NICENESS`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from service import heap
from telemetry.spans import DEFAULT_BATCH, readable, resource, split_frames

# Spans per export call, and how long a span may wait for others to join its batch, unless
# the server says otherwise (``--batch-size``, ``--delay-ms``: OpenTelemetry's
# OTEL_BSP_MAX_EXPORT_BATCH_SIZE and OTEL_BSP_SCHEDULE_DELAY, read by the server's settings).
MAX_BATCH = DEFAULT_BATCH[0]
MAX_DELAY_SECONDS = DEFAULT_BATCH[1] / 1000
READ_BYTES = 1 << 20
# After each read, the pipe is left to fill this long before the next: the server's writes
# meanwhile wake nobody (waking a process asleep on the pipe costs the writer ~8 µs per write
# on a virtual machine, against ~1 µs), and frames arrive here by tens, not one by one. What
# sits in the pipe is the kernel's, so it survives the server's death and is still exported.
SETTLE_SECONDS = 0.05
# The collector's youngest generation is examined after this many more allocations than
# releases (Python's default: 700). The spans of a batch live until it is exported, so with
# the default, collections walk the same waiting spans again and again as they are promoted
# (``bench.ab``, two runs: the whole tree 0.962 and 0.975 of before, the exporter alone about
# 6 % less, and the serving process on the other core, which the exporter's work slows, 0.973
# and 0.985).
GC_YOUNG_THRESHOLD = 100_000
# While it encodes a batch, the exporter sleeps PAUSE_SECONDS after every SLICE_SPANS spans
# (about a millisecond of encoding on a small machine). On a core it shares, a process that
# wakes meanwhile (the server on a small machine; the latency client of ``make bench``) then
# waits at most one slice: a kernel that preempts only at its tick (PREEMPT_NONE, HZ=250, as
# on the bench's machine) made it wait about 4 ms behind a whole batch's encoding (20-30 ms
# for 512 spans), even with the exporter at idle priority; at 500 turns/s, the exports' starts
# held most of the latency client's slowest turns.
SLICE_SPANS = 32
PAUSE_SECONDS = 0.0002
# The exporter runs at the lowest CPU priority (nice 19), the threads it starts with it: on a
# core it shares with the server, the server's turns come first. With the exporter on the
# server's core (the bench's machine, 500 and 800 turns/s), the turns' p99 was 20-21 and
# 29-32 ms at the default priority, 5.3-7.5 and 8.2-19.6 ms at nice 19. When every core is
# busy, the exporter lags rather than the turns: the pipe fills and batches are dropped,
# counted in rdv_spans_dropped_total, as when the collector is slow.
NICENESS = 19


def make_exporter(kind: str) -> SpanExporter:
    """The SDK's exporter for ``--exporter``."""
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise SystemExit(f"telemetry.sidecar: unknown exporter {kind!r} (otlp, console)")


class PacedSpans(list[ReadableSpan]):
    """A batch whose iteration (the SDK's encoder iterates the batch once, encoding each span
    as it comes) pauses after every :data:`SLICE_SPANS` spans, giving the core to whatever
    waits for it."""

    def __iter__(self) -> Iterator[ReadableSpan]:
        for at, span in enumerate(super().__iter__()):
            if at and at % SLICE_SPANS == 0:
                time.sleep(PAUSE_SECONDS)
            yield span


def lower_priority() -> None:
    """Take the lowest CPU priority (:data:`NICENESS`), unless the system refuses."""
    with contextlib.suppress(OSError):
        os.nice(max(0, NICENESS - os.nice(0)))


def settle_heap() -> None:
    """What was imported to start is frozen out of the collector's scans, and the youngest
    generation is examined every :data:`GC_YOUNG_THRESHOLD` allocations (:func:`service.heap.settle`)."""
    heap.settle(GC_YOUNG_THRESHOLD)


def run(fd: int, exporter: SpanExporter, version: str, max_batch: int = MAX_BATCH,
        max_delay: float = MAX_DELAY_SECONDS) -> int:
    """Export what arrives on ``fd`` until its end, in batches of at most ``max_batch`` spans,
    none waiting longer than ``max_delay`` seconds; how many spans were exported."""
    res = resource(version)
    buffer = bytearray()
    spans: list[ReadableSpan] = []
    oldest = 0.0
    exported = 0

    def export(whole: bool) -> None:
        """Export full batches (``whole``: everything, the last batch part-full)."""
        nonlocal spans, exported, oldest
        end = len(spans) if whole else len(spans) - len(spans) % max_batch
        for at in range(0, end, max_batch):
            exporter.export(PacedSpans(spans[at:min(at + max_batch, end)]))
        exported += end
        spans = spans[end:]
        if spans:
            # The rest came with the last read: it waits for the next batch from now on.
            oldest = time.monotonic()

    while True:
        wait = None if not spans else max(0.0, oldest + max_delay - time.monotonic())
        ready, _, _ = select.select([fd], [], [], wait)
        if ready:
            chunk = os.read(fd, READ_BYTES)
            if not chunk:
                break
            buffer += chunk
            batches, used = split_frames(buffer)
            del buffer[:used]
            if batches and not spans:
                oldest = time.monotonic()
            spans.extend(readable(rec, res) for batch in batches for rec in batch)
        if spans and time.monotonic() - oldest >= max_delay:
            export(whole=True)
        elif len(spans) >= max_batch:
            # Full batches only: a read of 520 spans is one export of 512, not 512 then 8.
            export(whole=False)
        if ready:
            time.sleep(SETTLE_SECONDS)
    export(whole=True)
    exporter.shutdown()
    return exported


def main(argv: list[str] | None = None) -> int:
    """Read span records from standard input and export them."""
    parser = argparse.ArgumentParser(prog="python -m telemetry.sidecar", description=__doc__)
    parser.add_argument("--exporter", required=True, choices=("otlp", "console"))
    parser.add_argument("--version", default="dev", help="service.version of the spans' resource")
    parser.add_argument("--batch-size", type=int, default=MAX_BATCH, help="most spans per export")
    parser.add_argument("--delay-ms", type=int, default=int(MAX_DELAY_SECONDS * 1000),
                        help="longest a span waits for its batch, in milliseconds")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.delay_ms < 1:
        parser.error("--batch-size and --delay-ms must be at least 1")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    lower_priority()
    exporter: Any = make_exporter(args.exporter)
    settle_heap()
    run(sys.stdin.fileno(), exporter, args.version, args.batch_size, args.delay_ms / 1000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
