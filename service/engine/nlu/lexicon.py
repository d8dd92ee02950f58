"""Word lists and phrase tables kept as package data (``data/*.txt``), read once at import.

Two plain-text formats, both with ``#`` comments and blank lines ignored:

- a word list: words separated by white space, any number a line;
- a table: ``[key]`` headers, then one entry a line; a phrase's words are separated by spaces.

Reading package data at import is not I/O of a turn: the engine stays pure.
"""

from __future__ import annotations

from importlib import resources


def _lines(name: str) -> list[str]:
    text = resources.files("service.engine.nlu").joinpath("data", name).read_text("utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def words(name: str) -> tuple[str, ...]:
    """The words of a word list, in file order."""
    return tuple(word for line in _lines(name) for word in line.split())


def entries(name: str) -> dict[str, tuple[str, ...]]:
    """A table's entries by key, each the text of its line, in file order."""
    return table_of(name, _lines(name))


def table_of(name: str, lines: list[str]) -> dict[str, tuple[str, ...]]:
    """The table written in ``lines`` (comments and blank lines already dropped)."""
    table: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith("[") and line.endswith("]"):
            current = table.setdefault(line[1:-1], [])
        elif current is None:
            raise ValueError(f"{name}: an entry before the first [key]: {line!r}")
        else:
            current.append(line)
    return {key: tuple(values) for key, values in table.items()}


def grouped_words(name: str) -> dict[str, tuple[str, ...]]:
    """A table whose lines are word lists: each key's words, in file order."""
    return {key: tuple(word for line in values for word in line.split()) for key, values in entries(name).items()}


def phrases(name: str) -> dict[str, tuple[tuple[str, ...], ...]]:
    """A phrase table: each entry split into its words."""
    return {key: tuple(tuple(entry.split()) for entry in values) for key, values in entries(name).items()}
