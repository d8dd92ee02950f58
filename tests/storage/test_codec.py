"""The codec's encodings that both stores write: UTC text of moments, events encoded once,
and the conversation's telemetry metadata."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.engine import events as ev
from service.engine.states import BookingResult, Channel, State
from service.storage import codec
from service.storage.base import EventRecord
from service.storage.codec import event_json, event_records, jsonable, meta_from_json, meta_json, utc_text

PARIS = ZoneInfo("Europe/Paris")


def test_utc_text_is_fixed_width_utc_whatever_the_zone() -> None:
    """A moment's text is the same, fixed-width UTC ISO, in UTC or in another zone, with or
    without microseconds, however many moments were written before."""
    base = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night Paris moves to summer time
    moments = [base + timedelta(minutes=7 * i, microseconds=i % 3) for i in range(3 * codec.UTC_TEXTS_KEPT)]
    for _ in range(2):  # the second time from what was kept
        for moment in moments:
            text = utc_text(moment)
            assert text == utc_text(moment.astimezone(PARIS)) == moment.isoformat(timespec="microseconds")
            assert len(text) == len("2026-03-29T00:30:00.000000+00:00") and text.endswith("+00:00")
            assert datetime.fromisoformat(text) == moment
    assert utc_text(datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS)) == "2026-10-25T01:30:00.000000+00:00"
    assert utc_text(datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=PARIS)) == "2026-10-25T00:30:00.000000+00:00"


CALL: list[ev.Event] = [
    ev.ConversationStarted(Channel.VOICE),
    ev.TurnReceived(State.START, 0, interrupted=True),
    ev.StateChanged(State.START, State.WAIT_CONFIRM, datetime(2026, 3, 4, 9, 0, 0, 500, tzinfo=PARIS)),
    ev.SlotsSent(Channel.VOICE, "Voici : jeudi à 8h30, « ou » vendredi ?",
                 (datetime(2026, 3, 5, 8, 30, tzinfo=PARIS), datetime(2026, 3, 6, 9, 0, tzinfo=UTC))),
    ev.BookingResulted(BookingResult.SLOT_TAKEN, datetime(2026, 3, 5, 8, 30, tzinfo=PARIS), 1),
]


def test_an_event_is_stored_as_the_json_of_its_values() -> None:
    """Each record's JSON text is its data, which is the event's plain values (enums by
    value, datetimes ISO with offset), the slot message's length added."""
    at = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    records = event_records("c1", CALL, at)
    assert [r.kind for r in records] == [type(e).__name__ for e in CALL]
    for event, record in zip(CALL, records, strict=True):
        expected = jsonable(event)
        if isinstance(event, ev.SlotsSent):
            expected["length"] = len(event.message)
        assert record.data == expected
        assert record.encoded is not None and json.loads(event_json(record)) == expected
        assert (record.conv_id, record.at) == ("c1", at)
    assert records[3].data["slot_starts"] == ["2026-03-05T08:30:00+01:00", "2026-03-06T09:00:00+00:00"]
    assert records[2].data["at"] == "2026-03-04T09:00:00.000500+01:00"


def test_an_events_data_is_read_from_its_text_only_when_asked_for() -> None:
    """A turn's records are made from the events' JSON text alone (nothing decoded on the
    turn path): their data is read from it when first asked for, and they compare with
    records made from data; a record needs one or the other."""
    at = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    records = event_records("c1", CALL, at)
    lazy = [r for r in records if r._data is None]
    assert {r.kind for r in lazy} == {type(e).__name__ for e in CALL} - {"SlotsSent"}
    for record in lazy:
        assert record.encoded is not None
        by_hand = EventRecord("c1", at, record.kind, json.loads(record.encoded))
        assert record == by_hand and by_hand == record
        assert record._data is not None  # read once, kept
    assert EventRecord("c1", at, "Kind", {"n": 1}) != EventRecord("c1", at, "Kind", {"n": 2})
    assert EventRecord("c1", at, "Kind", None, '{"n":1}') == EventRecord("c1", at, "Kind", {"n": 1})
    assert "{'n': 1}" in repr(EventRecord("c1", at, "Kind", None, '{"n":1}'))
    with pytest.raises(ValueError, match="data or their JSON text"):
        EventRecord("c1", at, "Kind", None)


def test_an_event_orjson_refuses_is_encoded_by_the_store() -> None:
    """A lone surrogate (which orjson refuses) leaves the record without JSON text: the store
    encodes its data itself; a record made by hand is encoded the same way."""
    sent = ev.SlotsSent(Channel.TEXT, "bad \ud800 text", ())
    [record] = event_records("c1", [sent], datetime(2026, 3, 4, tzinfo=UTC))
    assert record.encoded is None
    assert record.data == {"channel": "text", "message": "bad \ud800 text", "slot_starts": [], "length": 10}
    assert json.loads(event_json(record)) == record.data
    by_hand = EventRecord("c1", datetime(2026, 3, 4, tzinfo=UTC), "Kind", {"n": 1, "texte": "été"})
    assert event_json(by_hand) == '{"n": 1, "texte": "été"}'


def test_meta_reads_back_as_written() -> None:
    """Metadata reads back equal, through orjson or, for what orjson refuses, Python's json
    (a lone surrogate, a key that is not text); an integer beyond 64 bits is written whole."""
    cases: list[dict[str, object]] = [
        {},
        {"trace_id": "0af7651916cd43dd8448eb211c80319c", "state": "WAIT_CONFIRM", "n": 3, "spans": {"a": [1, 2.5]}},
        {"texte": "été\x00\x1f « » \u2028", "none": None, "yes": True},
        {"bad": "\ud800"},
    ]
    for meta in cases:
        assert meta_from_json(meta_json(meta)) == meta
    assert meta_from_json(meta_json({1: "a"})) == {"1": "a"}  # type: ignore[dict-item]
    assert json.loads(meta_json({"big": 2**70})) == {"big": 2**70}
    assert meta_from_json(None) == {} and meta_from_json("") == {}
    assert meta_from_json('{"a": "caf\\u00e9", "b": 1}') == {"a": "café", "b": 1}  # rows written before
