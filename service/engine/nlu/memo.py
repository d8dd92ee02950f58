"""Memos of what callers said: a function of a caller's text (its words, names, numbers)
read once per text for speed, as ``functools.lru_cache`` keeps it, and listed here so that
:func:`forget_all` empties every one of them (a running server does it every few minutes,
see ``service.http.app.MEMO_SECONDS``). A memo only saves work: emptied, it computes the
same value again from the same text."""

from __future__ import annotations

from collections.abc import Callable
from functools import _lru_cache_wrapper, lru_cache
from typing import Any, TypeVar

T = TypeVar("T")

_MEMOS: list[_lru_cache_wrapper[Any]] = []


def caller_memo(maxsize: int) -> Callable[[Callable[..., T]], _lru_cache_wrapper[T]]:
    """``lru_cache(maxsize)``, for a function whose arguments hold what a caller said."""

    def memoized(fn: Callable[..., T]) -> _lru_cache_wrapper[T]:
        memo = lru_cache(maxsize=maxsize)(fn)
        _MEMOS.append(memo)
        return memo

    return memoized


def forget_all() -> None:
    """Empty every memo of what callers said."""
    for memo in _MEMOS:
        memo.cache_clear()
