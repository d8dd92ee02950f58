"""The barge-in heuristic on Vapi's spoken history: a slot list heard only in part."""

from __future__ import annotations

from service.vapi.bargein import slot_list_cut_short

SLOTS = "Je peux vous proposer mardi à 9 heures, mardi à 14 heures ou jeudi à 10 heures. Lequel préférez-vous ?"


def test_a_list_cut_while_spoken_is_a_barge_in() -> None:
    assert slot_list_cut_short(SLOTS, "Bonjour. Je peux vous proposer mardi à 9 heures, mardi")


def test_the_whole_list_heard_is_not_a_barge_in() -> None:
    assert not slot_list_cut_short(SLOTS, "Bonjour. " + SLOTS)


def test_spacing_and_case_do_not_matter() -> None:
    assert slot_list_cut_short(SLOTS, "je  peux vous PROPOSER\nmardi à 9 heures")


def test_nothing_heard_or_no_list_is_not_a_barge_in() -> None:
    assert not slot_list_cut_short(SLOTS, None)
    assert not slot_list_cut_short(None, "Je peux vous proposer")
    assert not slot_list_cut_short(SLOTS, "Quel est votre nom ?")


def test_words_after_the_list_start_that_leave_it_are_not_a_cut() -> None:
    assert not slot_list_cut_short(SLOTS, "Je peux vous proposer autre chose demain")
