"""The custom-LLM request's history is read in one pass: the same turn as reading it whole
(every message's text, then the last user message and the words spoken before it)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.http.common import ApiError
from service.vapi.protocol import MAX_TEXT_CHARS, _text_of, parse_chat

ROLE = st.sampled_from(["system", "user", "assistant", "tool", "developer", "robot", 3])
CONTENT = st.one_of(
    st.none(), st.text(max_size=8), st.sampled_from(["", "oui", "le premier"]),
    st.lists(st.one_of(st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=5)}),
                       st.fixed_dictionaries({"type": st.just("image")}), st.just("x")), max_size=3),
    st.just(7),
)
MESSAGE = st.one_of(st.fixed_dictionaries({"role": ROLE, "content": CONTENT}), st.just("not an object"))


def two_passes(body: dict[str, Any]) -> tuple[str | None, int, str | None]:
    """(text, user_index, heard) read as the history was read before: all texts, then the rest."""
    texts = []
    for i, message in enumerate(body["messages"]):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise ApiError(422, f"{where} must be an object")
        role = message.get("role")
        if not isinstance(role, str) or role not in {"system", "user", "assistant", "tool", "function", "developer"}:
            raise ApiError(422, f"{where}.role must be one of assistant, developer, function, system, tool, user")
        texts.append((role, _text_of(message.get("content"), where)))
    user_at = [i for i, (role, _) in enumerate(texts) if role == "user"]
    if not user_at:
        return None, 0, None
    last = user_at[-1]
    spoken = [t for role, t in texts[:last] if role == "assistant" and t]
    return (texts[last][1] or "")[:MAX_TEXT_CHARS], len(user_at), spoken[-1] if spoken else None


@settings(max_examples=400, deadline=None)
@given(st.lists(MESSAGE, min_size=1, max_size=8))
def test_one_pass_reads_the_history_as_two(messages: list[Any]) -> None:
    body = {"messages": messages, "call": {"id": "call-1"}}
    try:
        expected: Any = two_passes(body)
    except ApiError as exc:
        expected = (exc.status, exc.message)
    try:
        turn = parse_chat(body)
        seen: Any = (turn.text, turn.user_index, turn.heard)
    except ApiError as exc:
        seen = (exc.status, exc.message)
    assert seen == expected
