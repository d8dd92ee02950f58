"""Log lines are written once per event-loop pass, at once outside a loop, and none is lost
when the telemetry shuts down."""

from __future__ import annotations

import asyncio
import io

from telemetry import Telemetry
from telemetry import names as n


class CountingStream(io.StringIO):
    """A text stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_of_one_loop_pass_are_one_write() -> None:
    stream = CountingStream()
    telemetry = Telemetry.create(trace_secret=b"s", version="t", log_stream=stream)

    async def turn() -> tuple[int, int]:
        telemetry.log.info(n.LOG_FLOW, conv_id="conv_a", state="START", turn=0)
        telemetry.log.info(n.LOG_STATE_CHANGE, conv_id="conv_a", from_state="START", to_state="QUALIF_NAME")
        before = stream.writes
        await asyncio.sleep(0)
        return before, stream.writes

    before, after = asyncio.run(turn())
    assert (before, after) == (0, 1)
    assert stream.getvalue().splitlines() == [
        "[FLOW] conv_a, state=START, turn=0", "[STATE_CHANGE] conv_a: START → QUALIF_NAME",
    ]


def test_outside_a_loop_each_line_is_written_at_once_and_shutdown_flushes() -> None:
    stream = CountingStream()
    telemetry = Telemetry.create(trace_secret=b"s", version="t", log_stream=stream)
    telemetry.log.info(n.LOG_BOOKING_CANCELLED, conv_id="conv_b")
    assert stream.getvalue() == "booking_cancelled conv_b\n"

    async def pending() -> None:
        telemetry.log.info(n.LOG_FLOW, conv_id="conv_b", state="START", turn=1)
        telemetry.shutdown()  # before the pass ends: the line must not wait for it

    asyncio.run(pending())
    assert stream.getvalue().splitlines()[-1] == "[FLOW] conv_b, state=START, turn=1"


def test_personal_data_masked_in_free_values_not_in_states() -> None:
    stream = io.StringIO()
    telemetry = Telemetry.create(trace_secret=b"s", version="t", log_stream=stream)
    telemetry.log.info(n.LOG_RDV_CONFIRMED, conv_id="conv_c", slot="mardi 10h", name="Jean Dupont")
    telemetry.log.info(n.LOG_CALENDAR_UNAVAILABLE, error="refused for +33612345678")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[RDV_CONFIRMED] conv_c, slot=mardi 10h, name=J*** D***"
    assert "+33612345678" not in lines[1] and "+336" in lines[1]
    pii = io.StringIO()
    Telemetry.create(trace_secret=b"s", version="t", log_stream=pii, log_pii=True).log.info(
        n.LOG_RDV_CONFIRMED, conv_id="conv_c", slot="mardi 10h", name="Jean Dupont")
    assert pii.getvalue() == "[RDV_CONFIRMED] conv_c, slot=mardi 10h, name=Jean Dupont\n"
