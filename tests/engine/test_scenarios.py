"""One scenario per behaviour the seed names, driven through the text API over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Live

PHONE = "+33612345678"
BOOK = "bonjour je voudrais prendre rendez-vous"


async def events(live: Live, conv_id: str, kind: str) -> list[dict[str, Any]]:
    """The stored events of one kind for a conversation, from its timeline."""
    response = await live.client.get(f"/api/conversations/{conv_id}")
    assert response.status_code == 200, response.text
    return [e for e in response.json()["events"] if e["kind"] == kind]


# Slot holds off: the callers are offered the same slots, so they can race for them.
NO_HOLDS = {"RDV_SLOT_HOLD_SECONDS": "0"}


async def to_slots(live: Live, conv_id: str, pref: str = "pas de préférence", **extra: Any) -> dict[str, Any]:
    """Drive a conversation up to the slot proposal."""
    assert (await live.say(conv_id, BOOK, **extra))["state"] == "QUALIF_NAME"
    assert (await live.say(conv_id, "Jean Dupont", **extra))["state"] == "QUALIF_PREF"
    answer = await live.say(conv_id, pref, **extra)
    assert answer["state"] == "WAIT_CONFIRM", answer
    return answer


async def test_happy_path_confirms_with_read_back(make_live: Any) -> None:
    """START → QUALIF_NAME → QUALIF_PREF → WAIT_CONFIRM → CONFIRMED, reading back date, time, name."""
    async with make_live() as live:
        await to_slots(live, "conv_happy", caller_phone=PHONE)
        answer = await live.say("conv_happy", "le premier", caller_phone=PHONE)
        assert answer["state"] == "CONFIRMED"
        assert answer["ended"] is True
        assert "C'est noté" in answer["reply"] and "Jean Dupont" in answer["reply"]
        assert "mars" in answer["reply"] and "h" in answer["reply"]
        changed = await events(live, "conv_happy", "StateChanged")
        changes = [(e["data"]["from_state"], e["data"]["to_state"]) for e in changed]
        assert changes == [
            ("START", "QUALIF_NAME"), ("QUALIF_NAME", "QUALIF_PREF"),
            ("QUALIF_PREF", "WAIT_CONFIRM"), ("WAIT_CONFIRM", "CONFIRMED"),
        ]


async def test_phone_asked_only_when_caller_id_missing(make_live: Any) -> None:
    """Without a caller id the engine asks a number (QUALIF_PHONE) before booking."""
    async with make_live() as live:
        await to_slots(live, "conv_nophone")
        assert (await live.say("conv_nophone", "le deuxième"))["state"] == "QUALIF_PHONE"
        answer = await live.say("conv_nophone", "zéro six douze trente-quatre cinquante-six soixante-dix-huit")
        assert answer["state"] == "CONFIRMED"


async def test_voice_slot_message_is_short_and_speakable(make_live: Any) -> None:
    """On voice the slot message stays under 350 characters with labels like "mardi 3 à 14h"."""
    async with make_live() as live:
        answer = await to_slots(live, "conv_voice", channel="voice", caller_phone=PHONE)
        assert len(answer["reply"]) <= 350
        assert "/" not in answer["reply"] and ":00" not in answer["reply"]
        sent = await events(live, "conv_voice", "SlotsSent")
        assert sent[0]["data"]["length"] == len(sent[0]["data"]["message"]) <= 350


async def test_rejection_proposes_three_other_slots(make_live: Any) -> None:
    """"Aucun ne me va" proposes three new slots, none of the first three."""
    async with make_live() as live:
        await to_slots(live, "conv_reject", caller_phone=PHONE)
        answer = await live.say("conv_reject", "aucun ne me va", caller_phone=PHONE)
        assert answer["state"] == "WAIT_CONFIRM"
        first, second = await events(live, "conv_reject", "SlotsSent")
        assert not set(first["data"]["slot_starts"]) & set(second["data"]["slot_starts"])
        assert len(second["data"]["slot_starts"]) == 3


async def test_slot_choice_recovery_then_transfer(make_live: Any) -> None:
    """One free re-ask (CONFIRM_RETRY_MAX), then slot_choice fails twice → TRANSFERRED."""
    async with make_live() as live:
        await to_slots(live, "conv_choice", caller_phone=PHONE)
        replies = []
        for _ in range(2):
            answer = await live.say("conv_choice", "bleu ciel", caller_phone=PHONE)
            assert answer["state"] == "WAIT_CONFIRM"
            replies.append(answer["reply"])
        answer = await live.say("conv_choice", "bleu ciel", caller_phone=PHONE)
        assert answer["state"] == "TRANSFERRED"
        assert answer["action"] == "transfer"
        assert replies[0] != replies[1], "each clarification is worded differently"
        reached = await events(live, "conv_choice", "RecoveryLimitReached")
        assert [e["data"]["field"] for e in reached] == ["slot_choice"]


async def test_name_recovery_to_menu_when_configured(make_live: Any) -> None:
    """With RDV_RECOVERY_FALLBACK=menu, two unreadable names lead to the INTENT_ROUTER menu; a
    first "why?" is answered (what the name is for) without counting."""
    async with make_live({"RDV_RECOVERY_FALLBACK": "menu"}) as live:
        await live.say("conv_name", BOOK)
        first = await live.say("conv_name", "je sais pas")
        assert first["state"] == "QUALIF_NAME"
        why = await live.say("conv_name", "pourquoi vous demandez ça")
        assert why["state"] == "QUALIF_NAME" and "dossier" in why["reply"]
        answer = await live.say("conv_name", "je sais pas")
        assert answer["state"] == "INTENT_ROUTER"
        assert "1" in answer["reply"] and "4" in answer["reply"]
        assert (await live.say("conv_name", "un"))["state"] == "QUALIF_NAME"


async def test_phone_recovery_limit_is_three(make_live: Any) -> None:
    """Three unreadable numbers in QUALIF_PHONE transfer the call."""
    async with make_live() as live:
        await to_slots(live, "conv_phone")
        await live.say("conv_phone", "le premier")
        states = [(await live.say("conv_phone", "douze douze"))["state"] for _ in range(3)]
        assert states == ["QUALIF_PHONE", "QUALIF_PHONE", "TRANSFERRED"]
        reached = await events(live, "conv_phone", "RecoveryLimitReached")
        assert reached[0]["data"]["field"] == "phone" and reached[0]["data"]["attempts"] == 3


async def test_fillers_do_not_count_as_failures(make_live: Any) -> None:
    """Three fillers in QUALIF_NAME do not trigger recovery; the name still works."""
    async with make_live() as live:
        await live.say("conv_filler", BOOK)
        for filler in ("euh", "allô ?", "attendez"):
            assert (await live.say("conv_filler", filler))["state"] == "QUALIF_NAME"
        assert (await live.say("conv_filler", "Marie Curie"))["state"] == "QUALIF_PREF"
        assert len(await events(live, "conv_filler", "FillerDetected")) == 3
        assert await events(live, "conv_filler", "RecoveryStepped") == []


async def test_strong_intent_preempts_any_state(make_live: Any) -> None:
    """"Je veux parler à quelqu'un" during WAIT_CONFIRM transfers at once (intent_override)."""
    async with make_live() as live:
        await to_slots(live, "conv_human", caller_phone=PHONE)
        answer = await live.say("conv_human", "je veux parler à quelqu'un", caller_phone=PHONE)
        assert answer["state"] == "TRANSFERRED"
        override = await events(live, "conv_human", "IntentOverridden")
        assert override[0]["data"] == {"state": "WAIT_CONFIRM", "intent": "human", "to_state": "TRANSFERRED"}


async def test_changing_the_day_while_slots_are_proposed_means_other_slots(make_live: Any) -> None:
    """"je voudrais changer de jour" in WAIT_CONFIRM turns the slots down (three others), while
    "déplacer mon rendez-vous" still goes to the modify flow (where a number holding no
    appointment is handed to the practice, nothing read out)."""
    async with make_live() as live:
        first = await to_slots(live, "conv_change_day", caller_phone=PHONE)
        other = await live.say("conv_change_day", "je voudrais changer de jour", caller_phone=PHONE)
        assert other["state"] == "WAIT_CONFIRM" and other["reply"] != first["reply"]
        assert "autres créneaux" in other["reply"]
        await to_slots(live, "conv_move", caller_phone=PHONE)
        moved = await live.say("conv_move", "en fait je voudrais déplacer mon rendez-vous", caller_phone=PHONE)
        override = await events(live, "conv_move", "IntentOverridden")
        assert override[0]["data"]["to_state"] == "MODIFY_IDENTIFY"
        assert moved["state"] == "TRANSFERRED" and "Pour votre sécurité" in moved["reply"]


async def test_faq_during_wait_confirm_keeps_the_slots(make_live: Any) -> None:
    """An address question is answered and the same three slots are offered again."""
    async with make_live() as live:
        await to_slots(live, "conv_faq", caller_phone=PHONE)
        answer = await live.say("conv_faq", "au fait c'est où le cabinet ?", caller_phone=PHONE)
        assert answer["state"] == "WAIT_CONFIRM"
        assert "République" in answer["reply"]
        assert "créneaux" in answer["reply"]
        sent = await events(live, "conv_faq", "SlotsSent")
        assert len(sent) == 1, "the slots were kept, not searched again"
        booked = await live.say("conv_faq", "le deuxième", caller_phone=PHONE)
        assert booked["state"] == "CONFIRMED"
        attempts = await events(live, "conv_faq", "BookingAttempted")
        assert attempts[0]["data"]["slot_start"] == sent[0]["data"]["slot_starts"][1]


async def test_anti_loop_switches_to_menu(make_live: Any) -> None:
    """Past MAX_TURNS_ANTI_LOOP turns the engine offers the menu, then the menu works."""
    async with make_live({"MAX_TURNS_ANTI_LOOP": "5"}) as live:
        await live.say("conv_loop", BOOK)
        for _ in range(4):
            assert (await live.say("conv_loop", "euh"))["state"] == "QUALIF_NAME"
        answer = await live.say("conv_loop", "euh")
        assert answer["state"] == "INTENT_ROUTER"
        loop = await events(live, "conv_loop", "AntiLoopTriggered")
        assert loop[0]["data"]["turn"] == 6 and loop[0]["data"]["max_turns"] == 5
        assert (await live.say("conv_loop", "je veux prendre rendez-vous"))["state"] == "QUALIF_NAME"


async def test_session_expiry_starts_over_politely(make_live: Any, clock: Any) -> None:
    """After SESSION_TTL_MINUTES idle the next message starts a new conversation, politely."""
    async with make_live() as live:
        await to_slots(live, "conv_ttl", caller_phone=PHONE)
        clock.advance(minutes=16)
        answer = await live.say("conv_ttl", BOOK, caller_phone=PHONE)
        assert answer["state"] == "QUALIF_NAME"
        assert "expiré" in answer["reply"]
        assert answer["turn"] == 1
        ended = await events(live, "conv_ttl", "ConversationEnded")
        assert [e["data"]["outcome"] for e in ended] == ["expired"]


async def test_reaper_closes_idle_conversations(make_live: Any, clock: Any) -> None:
    """The reaper gives idle conversations the outcome ``expired`` even if the caller never returns."""
    async with make_live() as live:
        await to_slots(live, "conv_reap", caller_phone=PHONE)
        clock.advance(minutes=20)
        assert await live.services.turns.reap("test") == 1
        stored = await live.services.store.load("conv_reap")
        assert stored.conversation.outcome.value == "expired"
        assert await live.services.turns.reap("test") == 0


async def test_booking_race_reproposes_then_one_winner(make_live: Any) -> None:
    """Two callers choose the same slot: one books it, the other gets new slots (BookingRetried)."""
    async with make_live(NO_HOLDS) as live:
        await to_slots(live, "conv_a", caller_phone=PHONE)
        await to_slots(live, "conv_b", caller_phone="+33698765432")
        a = await live.say("conv_a", "le premier", caller_phone=PHONE)
        b = await live.say("conv_b", "le premier", caller_phone="+33698765432")
        assert a["state"] == "CONFIRMED"
        assert b["state"] == "WAIT_CONFIRM"
        assert "pris" in b["reply"]
        results = await events(live, "conv_b", "BookingResulted")
        assert results[0]["data"]["result"] == "slot_taken"
        assert len(await events(live, "conv_b", "BookingRetried")) == 1
        taken = (await events(live, "conv_a", "BookingAttempted"))[0]["data"]["slot_start"]
        second = (await events(live, "conv_b", "SlotsSent"))[-1]["data"]["slot_starts"]
        assert taken not in second
        assert (await live.say("conv_b", "le premier", caller_phone="+33698765432"))["state"] == "CONFIRMED"


async def test_slot_holds_give_concurrent_callers_other_slots(make_live: Any, clock: Any) -> None:
    """With slot holds (on by default, 120 s), a second caller choosing at the same time is
    offered other slots (so both book at the first try); once the hold is over, the slots come
    back; with holds off both hear the same three."""
    async with make_live() as live:
        a = await to_slots(live, "conv_hold_a", caller_phone=PHONE)
        b = await to_slots(live, "conv_hold_b", caller_phone="+33698765432")
        offered_a = (await events(live, "conv_hold_a", "SlotsSent"))[-1]["data"]["slot_starts"]
        offered_b = (await events(live, "conv_hold_b", "SlotsSent"))[-1]["data"]["slot_starts"]
        assert a["reply"] != b["reply"] and not set(offered_a) & set(offered_b)
        assert (await live.say("conv_hold_a", "le premier", caller_phone=PHONE))["state"] == "CONFIRMED"
        assert (await live.say("conv_hold_b", "le premier", caller_phone="+33698765432"))["state"] == "CONFIRMED"
        clock.advance(seconds=60)
        await to_slots(live, "conv_hold_c", caller_phone="+33611111111")
        clock.advance(seconds=180)
        await to_slots(live, "conv_hold_d", caller_phone="+33622222222")
        offered_c = (await events(live, "conv_hold_c", "SlotsSent"))[-1]["data"]["slot_starts"]
        offered_d = (await events(live, "conv_hold_d", "SlotsSent"))[-1]["data"]["slot_starts"]
        assert offered_c == offered_d  # c's hold lapsed while it was still choosing
    async with make_live(NO_HOLDS) as live:
        a = await to_slots(live, "conv_nohold_a", caller_phone=PHONE)
        b = await to_slots(live, "conv_nohold_b", caller_phone="+33698765432")
        assert a["reply"] == b["reply"]


async def test_concurrent_callers_one_slot_exactly_one_wins(make_live: Any) -> None:
    """Twenty conversations choosing the same slot at once: exactly one confirms."""
    async with make_live(NO_HOLDS) as live:
        ids = [f"conv_race_{i}" for i in range(20)]
        for i, conv_id in enumerate(ids):
            await to_slots(live, conv_id, caller_phone=f"+336123456{i:02d}")
        answers = await asyncio.gather(
            *(live.say(c, "le premier", caller_phone=f"+336123456{i:02d}") for i, c in enumerate(ids))
        )
        assert sum(a["state"] == "CONFIRMED" for a in answers) == 1
        assert all(a["state"] in ("CONFIRMED", "WAIT_CONFIRM") for a in answers)


async def test_cancel_flow_frees_the_slot(make_live: Any) -> None:
    """A caller finds their appointment by phone, confirms, and the slot is free again."""
    async with make_live() as live:
        await to_slots(live, "conv_book", caller_phone=PHONE)
        await live.say("conv_book", "le premier", caller_phone=PHONE)
        slot = (await events(live, "conv_book", "BookingAttempted"))[0]["data"]["slot_start"]
        answer = await live.say("conv_cancel", "je voudrais annuler mon rendez-vous", caller_phone=PHONE)
        assert answer["state"] == "CANCEL_CONFIRM"
        assert "annule" in answer["reply"]
        done = await live.say("conv_cancel", "oui", caller_phone=PHONE)
        assert done["state"] == "CANCELLED" and done["ended"]
        await to_slots(live, "conv_again", caller_phone="+33698765432")
        offered = (await events(live, "conv_again", "SlotsSent"))[0]["data"]["slot_starts"]
        assert slot in offered


async def test_modify_flow_moves_the_appointment(make_live: Any) -> None:
    """Moving an appointment books the new slot and frees the old one in one go."""
    async with make_live() as live:
        await to_slots(live, "conv_orig", caller_phone=PHONE)
        await live.say("conv_orig", "le premier", caller_phone=PHONE)
        old = (await events(live, "conv_orig", "BookingAttempted"))[0]["data"]["slot_start"]
        assert (await live.say("conv_move", "je voudrais déplacer mon rendez-vous",
                               caller_phone=PHONE))["state"] == "MODIFY_CONFIRM"
        assert (await live.say("conv_move", "oui", caller_phone=PHONE))["state"] == "QUALIF_PREF"
        assert (await live.say("conv_move", "plutôt l'après-midi", caller_phone=PHONE))["state"] == "WAIT_CONFIRM"
        done = await live.say("conv_move", "le premier", caller_phone=PHONE)
        assert done["state"] == "CONFIRMED"
        found = await live.services.store.find_bookings(PHONE, live.services.clock.now())
        assert len(found) == 1
        assert found[0].slot.start.isoformat() != old


async def test_restart_between_turns_continues(make_live: Any) -> None:
    """A new app instance on the same data directory continues the conversation."""
    async with make_live() as live:
        await live.say("conv_restart", BOOK)
        await live.say("conv_restart", "Jean Dupont")
    async with make_live() as live:
        answer = await live.say("conv_restart", "le matin")
        assert answer["state"] == "WAIT_CONFIRM"
        assert answer["turn"] == 3


async def test_terminal_state_is_never_left(make_live: Any) -> None:
    """After CONFIRMED, more caller turns get a closing answer and the state stays."""
    async with make_live() as live:
        await to_slots(live, "conv_done", caller_phone=PHONE)
        await live.say("conv_done", "le premier", caller_phone=PHONE)
        for text in ("merci", "je voudrais annuler", "le deuxième"):
            assert (await live.say("conv_done", text, caller_phone=PHONE))["state"] == "CONFIRMED"
        ended = await events(live, "conv_done", "ConversationEnded")
        assert len(ended) == 1
