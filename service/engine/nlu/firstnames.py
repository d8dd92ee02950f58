"""The first-name data and what it says of a word: how much more a first name than a last
name it is among French callers, and how a name is written on the appointment.

``data/first_names_fr.tsv``, derived from names-dataset (Apache 2.0 by the licence file it
ships, MIT by its metadata; see the licence file beside it and
``tools/derive_first_names.py``), gives each first name its popularity rank as a first name
and as a last name. Comparing the two tells "Dupont Marie" from "Marie Dupont" and "c'est
Ghislaine" (a first name alone) from "c'est Martin".
"""

from __future__ import annotations

import math
from importlib import resources


def _load() -> dict[str, tuple[int, int]]:
    table: dict[str, tuple[int, int]] = {}
    text = resources.files("service.engine.nlu").joinpath("data/first_names_fr.tsv").read_text("utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, first, last = line.split("\t")
            table[name] = (int(first), int(last))
    return table


FIRST_RANKS = _load()
NEVER_LAST = 60000  # the rank given to a first name never seen as a last name


# ----------------------------------------------------------------------------- scoring


def first_rank(word: str) -> int | None:
    """The word's best rank as a first name (a hyphenated name by its rarer part), or None."""
    entry = FIRST_RANKS.get(word)
    if entry is not None:
        return entry[0]
    parts = [p for p in word.split("-") if p]
    if len(parts) > 1 and all(p in FIRST_RANKS for p in parts):
        return max(FIRST_RANKS[p][0] for p in parts)
    return None


def first_score(word: str) -> float:
    """How much more a first name than a last name ``word`` is (log of the rank ratio); a
    word never seen as a first name scores -3, a hyphenated one by its weakest part."""
    entry = FIRST_RANKS.get(word)
    if entry is None:
        parts = [p for p in word.split("-") if p]
        if len(parts) > 1 and all(p in FIRST_RANKS for p in parts):
            return min(first_score(p) for p in parts)
        return -3.0
    first, last = entry
    return math.log((last or NEVER_LAST) / first)


def is_first_name(word: str) -> bool:
    """True for a known first name that is more often a first than a last name."""
    return first_score(word) > 0.5 and FIRST_RANKS.get(word.split("-")[0], (NEVER_LAST, 0))[0] <= 5000


# ----------------------------------------------------------------------------- display


def cap(word: str) -> str:
    """"marie-claire" → "Marie-Claire", "n'diaye" → "N'Diaye", "d'artagnan" → "d'Artagnan"."""
    def one(part: str) -> str:
        if "'" in part:
            head, _, tail = part.partition("'")
            if head == "d":
                return "d'" + one(tail)
            return head.capitalize() + "'" + one(tail)
        return part[:1].upper() + part[1:]

    return "-".join(one(p) for p in word.replace("’", "'").split("-"))


def shown_of(raw: str) -> str:
    """A heard word as written on the appointment: as the transcript wrote it when it
    capitalised it ("Le Floc'h", "D'Angelo"), else capitalised ("dupont" → "Dupont")."""
    raw = raw.replace("’", "'")
    if any(c.isupper() for c in raw) and not (raw.isupper() and len(raw) > 2):
        return raw[:1].upper() + raw[1:]
    return cap(raw.lower())
