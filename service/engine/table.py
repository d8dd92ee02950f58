"""The transition table, as data a reader can scan, checked when imported.

Every state is reachable from START, every non-terminal state has a way out, and
terminal states have none. The engine refuses any transition not listed here.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.engine.model import EngineInvariantError
from service.engine.states import TERMINAL, State

S = State

# Pre-emptions available from every non-terminal state: strong intents and fallbacks.
OVERRIDES: frozenset[State] = frozenset(
    {S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY, S.TRANSFERRED, S.INTENT_ROUTER}
)

# What is already known is never asked again, so the booking flow skips ahead: an opening
# that gives the intent, the name and the preference goes straight to the slots
# (START → WAIT_CONFIRM); a name given with its preference too (QUALIF_NAME → WAIT_CONFIRM).
# A patient named mid-call without a name sends the flow back to ask it (→ QUALIF_NAME); a
# move whose appointment and new preference are known goes straight to the slots.
FLOW: Mapping[State, frozenset[State]] = {
    S.START: frozenset({S.QUALIF_NAME, S.QUALIF_PREF, S.WAIT_CONFIRM}),
    S.QUALIF_NAME: frozenset({S.QUALIF_PREF, S.WAIT_CONFIRM}),
    S.QUALIF_PREF: frozenset({S.WAIT_CONFIRM, S.QUALIF_NAME}),
    S.WAIT_CONFIRM: frozenset({S.QUALIF_PHONE, S.CONFIRMED, S.QUALIF_NAME}),
    S.QUALIF_PHONE: frozenset({S.CONFIRMED, S.WAIT_CONFIRM, S.QUALIF_NAME}),
    S.CANCEL_IDENTIFY: frozenset({S.CANCEL_CONFIRM}),
    S.CANCEL_CONFIRM: frozenset({S.CANCELLED}),
    S.MODIFY_IDENTIFY: frozenset({S.MODIFY_CONFIRM, S.WAIT_CONFIRM}),
    S.MODIFY_CONFIRM: frozenset({S.QUALIF_PREF, S.WAIT_CONFIRM, S.CANCELLED}),
    S.INTENT_ROUTER: frozenset({S.QUALIF_NAME, S.QUALIF_PREF, S.WAIT_CONFIRM}),
    S.CONFIRMED: frozenset(),
    S.CANCELLED: frozenset(),
    S.TRANSFERRED: frozenset(),
}

# The transitions added by "skip what is known" (kept apart so tests can name them).
SKIPS: frozenset[tuple[State, State]] = frozenset({
    (S.START, S.WAIT_CONFIRM), (S.QUALIF_NAME, S.WAIT_CONFIRM), (S.QUALIF_PREF, S.QUALIF_NAME),
    (S.WAIT_CONFIRM, S.QUALIF_NAME), (S.QUALIF_PHONE, S.QUALIF_NAME), (S.MODIFY_IDENTIFY, S.WAIT_CONFIRM),
    (S.MODIFY_CONFIRM, S.WAIT_CONFIRM), (S.INTENT_ROUTER, S.WAIT_CONFIRM),
})


def _build() -> Mapping[State, frozenset[State]]:
    table: dict[State, frozenset[State]] = {}
    for state in State:
        if state in TERMINAL:
            table[state] = frozenset()
        else:
            table[state] = (FLOW[state] | OVERRIDES) - {state}
    return table


TRANSITIONS: Mapping[State, frozenset[State]] = _build()


def check(table: Mapping[State, frozenset[State]]) -> None:
    """Raise :class:`EngineInvariantError` if the table has an unreachable, trap or dead-end state."""
    missing = set(State) - set(table)
    if missing:
        raise EngineInvariantError(f"states without a row: {sorted(missing)}")
    reached = {S.START}
    frontier = [S.START]
    while frontier:
        for nxt in table[frontier.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    unreachable = set(State) - reached
    if unreachable:
        raise EngineInvariantError(f"unreachable states: {sorted(unreachable)}")
    for state, targets in table.items():
        if state in TERMINAL and targets:
            raise EngineInvariantError(f"terminal state {state} has exits")
        if state not in TERMINAL and not targets:
            raise EngineInvariantError(f"non-terminal state {state} has no exit")
    # Every non-terminal state must be able to reach a terminal one (no trap cycles).
    for state in State:
        seen = {state}
        frontier = [state]
        ok = state in TERMINAL
        while frontier and not ok:
            for nxt in table[frontier.pop()]:
                if nxt in TERMINAL:
                    ok = True
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        if not ok:
            raise EngineInvariantError(f"state {state} cannot reach an end")


def allowed(from_state: State, to_state: State) -> bool:
    """True when the table allows ``from_state`` → ``to_state``."""
    return to_state in TRANSITIONS[from_state]


check(TRANSITIONS)
