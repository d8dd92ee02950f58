"""The transition table: every state reachable, every non-terminal state has a way out."""

from __future__ import annotations

import pytest

from service.engine.model import EngineInvariantError
from service.engine.states import TERMINAL, State
from service.engine.table import TRANSITIONS, check


def test_declared_table_is_valid() -> None:
    """The shipped table passes its own import-time check."""
    check(TRANSITIONS)


@pytest.mark.parametrize("state", list(State))
def test_every_state_has_a_row_and_terminals_have_no_exit(state: State) -> None:
    """Terminal states have no exit; every other state has at least one."""
    assert state in TRANSITIONS
    assert (len(TRANSITIONS[state]) == 0) == (state in TERMINAL)


def test_check_rejects_unreachable_state() -> None:
    """A table where QUALIF_PHONE is never entered is refused."""
    broken = {s: frozenset(t - {State.QUALIF_PHONE}) for s, t in TRANSITIONS.items()}
    with pytest.raises(EngineInvariantError, match="unreachable"):
        check(broken)


def test_check_rejects_dead_end() -> None:
    """A non-terminal state with no exit is refused."""
    broken = dict(TRANSITIONS)
    broken[State.QUALIF_NAME] = frozenset()
    with pytest.raises(EngineInvariantError, match="no exit"):
        check(broken)


def test_check_rejects_trap_cycle() -> None:
    """Two states that only lead to each other are refused."""
    broken = dict(TRANSITIONS)
    broken[State.CANCEL_IDENTIFY] = frozenset({State.CANCEL_CONFIRM})
    broken[State.CANCEL_CONFIRM] = frozenset({State.CANCEL_IDENTIFY})
    with pytest.raises(EngineInvariantError, match="cannot reach an end"):
        check(broken)
