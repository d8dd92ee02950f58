"""Whole calls through the text API: cancelling and moving an appointment, and who may.

Only the verified caller id finds appointments; anyone else hears nothing of them and is
transferred, unless the practice opted in to exact-match cancellations from another number.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from service.engine import replies
from tests.conftest import Live
from tests.dialogue.calls import OTHER_PHONE, PHONE, Call, drive
from tests.support import PARIS

SECURE = "Pour votre sécurité"
CANCEL = "bonjour, je voudrais annuler mon rendez-vous"
MOVE = "bonjour, je voudrais déplacer mon rendez-vous"


async def book(live: Live, conv_id: str, turns: tuple[str, ...], phone: str = PHONE) -> datetime:
    """Book one appointment from ``phone``; its local start."""
    call = await drive(live, conv_id, turns, caller_phone=phone)
    assert call.final["state"] == "CONFIRMED", call.answers
    return call.booked_start()


async def thursday_and_friday(live: Live) -> tuple[datetime, datetime]:
    """Two appointments under PHONE: Thursday morning (Jean Dupont), Friday afternoon (Inès Brossard)."""
    thursday = await book(live, "conv_thu", ("je voudrais un rendez-vous jeudi matin, c'est Jean Dupont", "le premier"))
    friday = await book(live, "conv_fri", ("je voudrais un rendez-vous pour ma fille Inès Brossard",
                                           "vendredi après-midi", "le premier"))
    assert thursday.weekday() == 3 and friday.weekday() == 4
    return thursday, friday


async def active(live: Live, phone: str = PHONE) -> list[tuple[datetime, str]]:
    """The appointments still booked under ``phone`` (local start, patient)."""
    found = await live.services.store.find_bookings(phone, live.services.clock.now())
    return [(b.slot.start.astimezone(PARIS), b.name) for b in found]


def reads_nothing(call: Call, *appointments: datetime) -> None:
    """No reply of ``call`` names a day, date or time of ``appointments``, nor a patient."""
    for answer in call.answers:
        text = answer["reply"]
        for moment in appointments:
            assert f"{moment.day} mars" not in text and f"à {moment.hour}h" not in text, text
        assert "Dupont" not in text and "Brossard" not in text, text


def opt_in(tmp_path: Path) -> dict[str, str]:
    """Environment for a practice that allows exact-match cancellations from another number."""
    example = Path(__file__).resolve().parents[2] / "service" / "practice.example.toml"
    text = example.read_text("utf-8").replace("cancel_from_other_number = false", "cancel_from_other_number = true")
    path = tmp_path / "practice-opt-in.toml"
    path.write_text(text, "utf-8")
    return {"RDV_PRACTICE_FILE": str(path)}


async def test_withheld_number_is_transferred_with_nothing_read_out(make_live: Any) -> None:
    """No caller id: the practice takes over, nothing of any appointment is said, nothing changes."""
    async with make_live() as live:
        thursday, friday = await thursday_and_friday(live)
        call = await drive(live, "conv_withheld", (CANCEL,))
        assert call.final["state"] == "TRANSFERRED" and SECURE in call.final["reply"]
        assert call.final["action"] == "transfer"
        reads_nothing(call, thursday, friday)
        assert len(await active(live)) == 2


async def test_another_number_is_transferred_even_with_name_day_and_time(make_live: Any) -> None:
    """From another number, even a full name with the day and time finds nothing (no opt-in)."""
    async with make_live() as live:
        thursday, friday = await thursday_and_friday(live)
        said = f"je voudrais annuler le rendez-vous de Jean Dupont jeudi à {thursday.hour}h{thursday.minute:02d}"
        call = await drive(live, "conv_other", (said,), caller_phone=OTHER_PHONE)
        assert call.final["state"] == "TRANSFERRED" and SECURE in call.final["reply"]
        reads_nothing(call, friday)
        moved = await drive(live, "conv_other_move", (MOVE,), caller_phone=OTHER_PHONE)
        assert moved.final["state"] == "TRANSFERRED" and SECURE in moved.final["reply"]
        assert len(await active(live)) == 2


async def test_opt_in_cancels_on_an_exact_match(make_live: Any, tmp_path: Path) -> None:
    """With the opt-in, another number cancels when the full name, day and time all match."""
    async with make_live(opt_in(tmp_path)) as live:
        thursday, friday = await thursday_and_friday(live)
        ask = await drive(live, "conv_optin", (CANCEL,), caller_phone=OTHER_PHONE)
        assert ask.final["state"] == "CANCEL_IDENTIFY"
        assert ask.final["reply"] == replies.IDENTIFY_OTHER_NUMBER
        call = await drive(live, "conv_optin", ("c'est au nom d'Inès Brossard", f"vendredi à {friday.hour}h", "oui"),
                           caller_phone=OTHER_PHONE)
        assert call.answers[0]["state"] == "CANCEL_IDENTIFY" and "Brossard" not in call.answers[0]["reply"]
        assert call.answers[1]["state"] == "CANCEL_CONFIRM", call.answers
        assert call.final["state"] == "CANCELLED"
        assert await active(live) == [(thursday, "Jean Dupont")]


async def test_opt_in_mismatch_reads_nothing_out(make_live: Any, tmp_path: Path) -> None:
    """With the opt-in, a wrong time or a wrong name transfers without reading anything out."""
    async with make_live(opt_in(tmp_path)) as live:
        thursday, friday = await thursday_and_friday(live)
        wrong_time = f"vendredi à {friday.hour + 1}h"
        call = await drive(live, "conv_wrong_time", (CANCEL, "Inès Brossard", wrong_time), caller_phone=OTHER_PHONE)
        assert call.final["state"] == "TRANSFERRED" and SECURE in call.final["reply"]
        reads_nothing(call, thursday, friday)
        right_time = f"vendredi à {friday.hour}h"
        call = await drive(live, "conv_wrong_name", (CANCEL, "Inès Dupont", right_time))
        assert call.final["state"] == "TRANSFERRED" and SECURE in call.final["reply"]
        reads_nothing(call, thursday, friday)
        assert len(await active(live)) == 2


async def test_opt_in_asks_what_is_missing(make_live: Any, tmp_path: Path) -> None:
    """With the opt-in, a name without the time is completed over turns before the lookup."""
    async with make_live(opt_in(tmp_path)) as live:
        thursday, _ = await thursday_and_friday(live)
        call = await drive(live, "conv_missing", (
            CANCEL, "Jean Dupont", f"jeudi à {thursday.hour}h{thursday.minute:02d}", "oui",
        ), caller_phone=OTHER_PHONE)
        assert call.answers[1]["state"] == "CANCEL_IDENTIFY" and "Il me manque" in call.answers[1]["reply"]
        assert "Dupont" not in call.answers[1]["reply"]
        assert [a["state"] for a in call.answers[2:]] == ["CANCEL_CONFIRM", "CANCELLED"]
        assert [name for _, name in await active(live)] == ["Inès Brossard"]


async def test_two_appointments_are_disambiguated(make_live: Any) -> None:
    """Two appointments: both are read (to the verified number) and the one named is cancelled."""
    async with make_live() as live:
        thursday, friday = await thursday_and_friday(live)
        call = await drive(live, "conv_which", (CANCEL, "celui de vendredi", "oui"), caller_phone=PHONE)
        which = call.answers[0]
        assert which["state"] == "CANCEL_IDENTIFY"
        assert which["reply"].startswith("Vous avez deux rendez-vous : ") and which["reply"].endswith("Lequel ?")
        assert f"jeudi {thursday.day}" in which["reply"] and f"vendredi {friday.day}" in which["reply"]
        assert call.answers[1]["state"] == "CANCEL_CONFIRM"
        assert f"vendredi {friday.day} mars" in call.answers[1]["reply"]
        assert call.final["state"] == "CANCELLED"
        assert await active(live) == [(thursday, "Jean Dupont")]


async def test_the_day_said_in_the_opening_picks_the_appointment(make_live: Any) -> None:
    """"Annuler mon rendez-vous de jeudi" goes straight to that one; "non, celui de vendredi" switches."""
    async with make_live() as live:
        thursday, friday = await thursday_and_friday(live)
        call = await drive(live, "conv_thursday", ("je voudrais annuler mon rendez-vous de jeudi",), caller_phone=PHONE)
        assert call.final["state"] == "CANCEL_CONFIRM" and f"jeudi {thursday.day} mars" in call.final["reply"]
        call = await drive(live, "conv_thursday", ("non, celui de vendredi", "oui"), caller_phone=PHONE)
        assert f"vendredi {friday.day} mars" in call.answers[0]["reply"]
        assert call.final["state"] == "CANCELLED"
        assert await active(live) == [(thursday, "Jean Dupont")]


async def test_a_daughters_appointment_is_named_by_her(make_live: Any) -> None:
    """Appointments of two patients on one number are listed with their names; "celui d'Inès" picks hers."""
    async with make_live() as live:
        thursday, friday = await thursday_and_friday(live)
        call = await drive(live, "conv_daughter", (
            "je voudrais annuler le rendez-vous de ma fille", "celui d'Inès", "oui",
        ), caller_phone=PHONE)
        assert "pour Inès Brossard" in call.answers[0]["reply"] and "pour Jean Dupont" in call.answers[0]["reply"]
        assert call.answers[1]["state"] == "CANCEL_CONFIRM" and f"vendredi {friday.day}" in call.answers[1]["reply"]
        assert await active(live) == [(thursday, "Jean Dupont")]


async def test_move_leaves_exactly_one_appointment(make_live: Any) -> None:
    """A move books the new slot and frees the old one: one appointment, new time, same patient."""
    async with make_live() as live:
        old = await book(live, "conv_orig", ("je voudrais un rendez-vous jeudi matin, c'est Jean Dupont", "le premier"))
        call = await drive(live, "conv_move", (MOVE, "oui, plutôt vendredi après-midi", "le premier"),
                           caller_phone=PHONE)
        assert [a["state"] for a in call.answers] == ["MODIFY_CONFIRM", "WAIT_CONFIRM", "CONFIRMED"]
        assert "au nom de Jean Dupont" in call.final["reply"] and "annulé" in call.final["reply"]
        ((start, name),) = await active(live)
        assert start != old and start.weekday() == 4 and start.hour >= 12 and name == "Jean Dupont"
        again = await drive(live, "conv_after", ("je voudrais un rendez-vous jeudi matin, c'est Marie Curie",),
                            caller_phone=OTHER_PHONE)
        offered = [datetime.fromisoformat(s).astimezone(PARIS) for s in again.events("SlotsSent")[0]["slot_starts"]]
        assert old in offered, "the old slot is free again"


async def test_move_among_two_keeps_the_other(make_live: Any) -> None:
    """Moving "celui de jeudi" (any verb of moving) replaces only that one; two appointments remain."""
    async with make_live() as live:
        thursday, friday = await thursday_and_friday(live)
        call = await drive(live, "conv_move2", (
            "je voudrais décaler mon rendez-vous", "celui de jeudi", "oui", "samedi matin", "le premier",
        ), caller_phone=PHONE)
        assert call.final["state"] == "CONFIRMED", call.answers
        remaining = await active(live)
        assert len(remaining) == 2 and (friday, "Inès Brossard") in remaining
        assert all(start != thursday for start, _ in remaining)
        assert any(start.weekday() == 5 and name == "Jean Dupont" for start, name in remaining)


async def test_move_with_the_new_day_goes_straight_to_slots(make_live: Any) -> None:
    """One appointment and the new wish in the same turn: the slots come at once."""
    async with make_live() as live:
        old = await book(live, "conv_orig2",
                         ("je voudrais un rendez-vous jeudi matin, c'est Jean Dupont", "le premier"))
        call = await drive(live, "conv_move3", ("je voudrais déplacer mon rendez-vous à samedi", "le premier"),
                           caller_phone=PHONE)
        assert call.answers[0]["state"] == "WAIT_CONFIRM", call.answers
        assert f"jeudi {old.day}" in call.answers[0]["reply"]
        ((start, _),) = await active(live)
        assert start.weekday() == 5 and call.final["state"] == "CONFIRMED"
