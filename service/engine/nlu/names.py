"""People's names as callers say them: "c'est Jean Dupont", "Dupont Jean", "Durand, Michel",
"monsieur Martin", "madame Lopes Maria", "Nguyen Van Minh", "Ferreira, Joaquim Ferreira",
"Martin non Martinez", "Kerouac, K E R O U A C, Yann", "Benoît tout court, c'est mon nom
de famille. Le prénom c'est Sandrine", and what is not a name ("c'est privé", "pourquoi
faire ?", "comme la couleur").

No kept library extracts a person's name from French speech-to-text without a downloaded
model, so the reading is written by hand, on the scan of the turn (:mod:`namescan`: name
words, runs, spellings, labels, comments, correction markers):

1. the runs that are the caller's are chosen: all of them when a name was asked, else
   those introduced ("c'est", "je m'appelle", "au nom de", a title, "… à l'appareil") or
   shaped like a name; runs that belong to someone else (the patient) are left out;
2. a correction marker between two runs takes the earlier back (a full name replaces it
   all, one word replaces the most similar word); a run said again inside a fuller one
   ("Ferreira, Joaquim Ferreira") is read once;
3. the order is decided by labels, else by what the first-name data (:mod:`firstnames`)
   says of each word and how they were said ("Nom, Prénom" after a comma, after a title,
   a surname framing the first name: "Le Gall Anne Le Gall").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz

from service.engine.frozen import replace
from service.engine.nlu.firstnames import (
    FIRST_RANKS,
    NEVER_LAST,
    first_rank,
    first_score,
    is_first_name,
)
from service.engine.nlu.namescan import (
    INTROS_LONGEST_FIRST,
    KIN,
    LEAD,
    NAME_GLUE,
    NOT_AFTER,
    PARTICLES,
    QUESTIONS,
    REFUSALS,
    STRONG_INTROS,
    WORD_SURNAMES_OK,
    NameScan,
    Run,
    Word,
    scan_names,
    upper,
)
from service.engine.nlu.tokens import Token, tokenize

NameIssue = Literal["refused", "question", "first_only"]
_VIETNAMESE_MIDDLE = frozenset({"van", "thi", "thanh", "duc", "ngoc", "minh"})


@dataclass(frozen=True, slots=True)
class Name:
    """A caller's name; ``first`` is None when only a title and last name were given."""

    first: str | None
    last: str


@dataclass(frozen=True, slots=True)
class Person:
    """A name as read: either part may be missing (a first name alone has no ``last``)."""

    first: str | None
    last: str | None


@dataclass(frozen=True, slots=True)
class NameFound:
    """A name read from a turn, the words it came from, and how it was read."""

    person: Person | None
    issue: NameIssue | None
    first: int
    last: int
    corrected: bool = False
    strong: bool = False  # introduced, titled or of two words or more: not a stray word
    used: frozenset[int] = frozenset()  # the tokens of the name's words


# ----------------------------------------------------------------------------- whose runs


def _introduced(words: tuple[str, ...], start: int) -> str | None:
    """"strong" or "weak" when an introduction ends right before word ``start`` (greetings
    and a role in between allowed: "moi je suis sa fille, Leïla"), else None."""
    k = start
    while k > 0 and words[k - 1] in LEAD:
        k -= 1
    if k >= 2 and words[k - 2] in ("sa", "son", "ses", "le", "la", "l'") and words[k - 1] in KIN:
        k -= 2
        while k > 0 and words[k - 1] in LEAD:
            k -= 1
    for phrase in INTROS_LONGEST_FIRST:
        n = len(phrase)
        if k >= n and words[k - n : k] == phrase:
            return "strong" if phrase in STRONG_INTROS else "weak"
    return None


def _after_preposition(scan: NameScan, run: Run) -> bool:
    before = run.first - 1
    return before >= 0 and scan.words[before] in NOT_AFTER and scan.kinds[before] != "spell"


def _capitalised(scan: NameScan, run: Run) -> bool:
    return scan.cased and all(upper(scan.tokens[w.at]) or w.spelled for w in run.words
                              if w.folded not in PARTICLES)


def _shaped(scan: NameScan, run: Run) -> bool:
    """Shaped like a name: a title, a first name first, or capitals mid-sentence."""
    if run.title is not None or is_first_name(run.words[0].folded):
        return True
    return _capitalised(scan, run) and not scan.tokens[run.first].opens


def _whole_clause(scan: NameScan, run: Run) -> bool:
    """"Bonjour, Wei Chen, je voudrais…": a capitalised name that is a clause of its own."""
    if len(run.words) < 2 or not _capitalised(scan, run):
        return False
    tokens = scan.tokens
    inside = [k for k, t in enumerate(tokens) if t.clause == run.clause]
    return all(run.first <= k < run.last or scan.words[k] in LEAD for k in inside)


def _opening(scan: NameScan, run: Run) -> bool:
    """"oui allo bonjour Fatoumata Diallo j'appelle…": a first name and a name right after
    the greetings, or capitalised mid-sentence."""
    if len(run.words) < 2 or not (is_first_name(run.words[0].folded) or _first_like(run.words[0].folded)):
        return False
    k = run.first
    while k > 0 and scan.words[k - 1] in LEAD:
        k -= 1
    return k == 0 or (_capitalised(scan, run) and not _after_preposition(scan, run))


def _first_like(word: str) -> bool:
    rank = first_rank(word)
    return rank is not None and rank <= 3000 and first_score(word) > 0


def _qualifies(scan: NameScan, run: Run, asked: bool) -> tuple[bool, bool]:
    """Whether a run is (part of) the caller's name, and whether strongly so."""
    words = scan.words
    labelled = any(w.role in ("first", "last") for w in run.words)
    intro = _introduced(words, run.first)
    if asked:
        ok = intro is not None or labelled or not _after_preposition(scan, run)
        return ok, ok
    if labelled or intro == "strong":
        return True, True
    if words[run.last : run.last + 2] in (("a", "l'appareil"), ("a", "l"), ("au", "telephone")):
        return True, True
    if run.title is not None and not _after_preposition(scan, run):
        return True, True
    if intro == "weak" and _shaped(scan, run):
        return True, True
    if _after_preposition(scan, run):
        return False, False
    ok = _whole_clause(scan, run) or _opening(scan, run)
    return ok, ok


def _glued(scan: NameScan, lo: int, hi: int) -> bool:
    """True when the tokens ``[lo, hi)`` between two runs do not end the name."""
    return all(scan.words[k] in NAME_GLUE or scan.kinds[k] in ("spell", "comment", "marker", "title")
               for k in range(lo, hi))


def _blocks(scan: NameScan, runs: list[Run]) -> list[list[Run]]:
    """Runs said together (only punctuation, spellings, comments, labels between them)."""
    blocks: list[list[Run]] = []
    for run in runs:
        if blocks and _glued(scan, blocks[-1][-1].last, run.first):
            blocks[-1].append(run)
        else:
            blocks.append([run])
    merged: list[list[Run]] = []
    for block in blocks:  # "Martin, comme le docteur, mais …, Lucie Martin": one name said twice
        keys = {w.folded for r in block for w in r.words if w.folded not in PARTICLES}
        labelled = any(w.role in ("first", "last") for r in block for w in r.words)
        home = next((m for m in merged if labelled or keys & {w.folded for r in m for w in r.words}), None)
        if home is not None:
            home.extend(block)
        else:
            merged.append(block)
    return merged


# ----------------------------------------------------------------------------- assembly


def _replace_one(segments: list[list[Word]], new: Word) -> list[list[Word]]:
    """The word a correction takes back: the most similar one, else the last name said."""
    scored = [(fuzz.ratio(w.folded, new.folded), s, k) for s, seg in enumerate(segments) for k, w in enumerate(seg)]
    score, s, k = max(scored, key=lambda o: (o[0], o[1], o[2]))
    if score < 50:
        s = len(segments) - 1
        k = next((i for i in range(len(segments[s]) - 1, -1, -1) if segments[s][i].role != "first"),
                 len(segments[s]) - 1)
    old = segments[s][k]
    out = [list(seg) for seg in segments]
    out[s][k] = replace(new, role=new.role or old.role)
    return out


def _merge(segments: list[list[Word]]) -> list[list[Word]]:
    """A part said again inside a fuller one ("Ferreira, Joaquim Ferreira") is read once,
    its labels and spellings kept."""
    out = [list(seg) for seg in segments if seg]
    changed = True
    while changed:
        changed = False
        for i, seg in enumerate(out):
            keys = {w.folded for w in seg}
            home = next((j for j, other in enumerate(out) if j != i and keys <= {w.folded for w in other}
                         and (len(other) > len(seg) or j < i)), None)
            if home is None:
                continue
            target = out[home]
            for w in seg:
                for k, t in enumerate(target):
                    if t.folded == w.folded:
                        target[k] = replace(t, role=w.role or t.role, spelled=w.spelled or t.spelled)
            del out[i]
            changed = True
            break
    return out


def _gather(scan: NameScan, runs: list[Run]) -> tuple[list[list[Word]], bool]:
    """The name's words in order, in segments (one per part said apart), corrections applied."""
    segments: list[list[Word]] = []
    corrected = False
    previous: Run | None = None
    for run in runs:
        words = list(run.words)
        if previous is not None and any(scan.kinds[k] == "marker" for k in range(previous.last, run.first)):
            corrected = True
            segments = [words] if len(words) >= 2 else _replace_one(segments, words[0])
        else:
            segments.append(words)
        previous = run
    return _merge(segments), corrected


@dataclass(frozen=True, slots=True)
class _Unit:
    """A name part: one word, or a particle with what follows ("Le Gall", "de La Tour")."""

    words: tuple[Word, ...]

    @property
    def key(self) -> str:
        return " ".join(w.folded for w in self.words)

    @property
    def particle(self) -> bool:
        return len(self.words) > 1 or self.words[0].folded in PARTICLES


def _units(words: list[Word]) -> list[_Unit]:
    units: list[_Unit] = []
    pending: list[Word] = []
    for w in words:
        pending.append(w)
        if w.folded not in PARTICLES:
            units.append(_Unit(tuple(pending)))
            pending = []
    if pending:
        if units:
            units[-1] = _Unit(units[-1].words + tuple(pending))
        else:
            units.append(_Unit(tuple(pending)))
    return units


def _last_text(words: list[Word]) -> str:
    """Last-name words joined, particles in their usual case ("de La Tour", "Le Gall")."""
    return " ".join(w.shown for w in words).replace("d' ", "d'")


def _first_text(units: list[_Unit]) -> str:
    """First names joined: "Jean Robert" is "Jean-Robert" when that is a known first name."""
    words = [w for u in units for w in u.words]
    if len(words) == 2 and f"{words[0].folded}-{words[1].folded}" in FIRST_RANKS:
        return "-".join(w.shown for w in words)
    return " ".join(w.shown for w in words)


def _swap(a: str, b: str, title: bool, comma: bool) -> bool:
    """Whether two name words said "a b" are last name then first name."""
    sa, sb = first_score(a), first_score(b)
    if comma:  # "Durand, Michel": the administrative order unless clearly a first name first
        return not (sa - sb > 1.0 and sa > 0.5)
    if title:  # "madame Lopes Maria"
        return sb - sa > 1.0
    rank = first_rank(a)
    # Said "Prénom Nom" unless the first word is clearly the surname: "Mathis Roger" stays,
    # "Rigaud Hélène" turns (a word that is a first name too needs a clearer difference).
    needed = 1.0 if sa < 0 else 1.5
    return sb - sa > needed and sb > -0.5 and (rank is None or rank > 300 or sa < -1.5)


def _order(units: list[_Unit], title: bool, comma: bool) -> tuple[list[_Unit], list[_Unit]]:
    """(first-name units, last-name units) of a name said in this order."""
    n = len(units)
    if n == 1:
        u = units[0]
        if not u.particle and not title and is_first_name(u.key) and u.key not in WORD_SURNAMES_OK:
            return [u], []
        return [], [u]
    if n >= 3 and units[0].key == units[-1].key:
        return units[1:-1], [units[-1]]  # "Le Gall Anne Le Gall": the surname framing the first name
    if n == 2:
        a, b = units
        if a.particle:
            return [b], [a]
        if b.particle:
            return [a], [b]
        return ([b], [a]) if _swap(a.key, b.key, title, comma) else ([a], [b])
    if units[-1].particle or all(not u.particle and (first_rank(u.key) or NEVER_LAST) <= 1000 for u in units[:-1]):
        return units[:-1], units[-1:]
    if not _first_like(units[0].key) and all(_first_like(u.key) for u in units[1:]):
        return units[1:], units[:1]
    return units[:1], units[1:]


def person_of(segments: list[list[Word]], title: bool) -> Person:
    """First and last name from the words of one name, in segments as said."""
    segments = _merge(segments)
    words = [w for seg in segments for w in seg]
    seen: set[str] = set()
    unique = [w for w in words if not (w.folded in seen or seen.add(w.folded))]  # type: ignore[func-returns-value]
    if any(w.role in ("first", "last") for w in unique):
        firsts = [w for w in unique if w.role == "first"]
        lasts = [w for w in unique if w.role == "last"]
        rest = [w for w in unique if w.role not in ("first", "last")]
        if lasts and not firsts:
            firsts = rest
        elif firsts and not lasts:
            lasts = rest
        else:
            lasts += rest
        first_units = [_Unit((w,)) for w in firsts]
        return Person(_first_text(first_units) if firsts else None, _last_text(lasts) if lasts else None)
    folded = [w.folded for w in words]
    if len(words) == 3 and folded[1] in _VIETNAMESE_MIDDLE and first_score(folded[0]) < -1:
        return Person(" ".join(w.shown for w in words[1:]), words[0].shown)  # "Nguyen Van Minh": family name first
    comma = len(segments) == 2 and all(len(_units(seg)) == 1 for seg in segments)
    first_units, last_units = _order(_units(words), title, comma)
    last_words = [w for u in last_units for w in u.words]
    return Person(_first_text(first_units) if first_units else None, _last_text(last_words) if last_words else None)


# ----------------------------------------------------------------------------- reading


def refusal(words: tuple[str, ...]) -> NameIssue | None:
    """"refused" or "question" when the turn turns the name question down or asks back."""
    if any(_find(words, p) >= 0 for p in REFUSALS):
        return "refused"
    if any(_find(words, p) >= 0 for p in QUESTIONS):
        return "question"
    return None


def refusal_words(words: tuple[str, ...]) -> frozenset[int]:
    """Positions of the words that make a refusal phrase ("je refuse", "c'est privé")."""
    marked: set[int] = set()
    for phrase in REFUSALS:
        at = _find(words, phrase)
        if at >= 0:
            marked.update(range(at, at + len(phrase)))
    return frozenset(marked)


def _find(words: tuple[str, ...], phrase: tuple[str, ...]) -> int:
    if phrase[0] not in words:  # the usual case, told without a scan in Python
        return -1
    for i in range(len(words) - len(phrase) + 1):
        if words[i : i + len(phrase)] == phrase:
            return i
    return -1


def caller_runs(scan: NameScan, asked: bool, claimed: frozenset[int] = frozenset()) -> tuple[list[Run], bool]:
    """The runs that make the caller's own name (none claimed by someone else's name),
    and whether they were given strongly (introduced, titled, asked for)."""
    chosen: list[Run] = []
    strong = False
    for run in scan.runs:
        if any(w.at in claimed for w in run.words):
            continue
        ok, firm = _qualifies(scan, run, asked)
        if ok:
            chosen.append(run)
            strong |= firm
    if not chosen:
        return [], False
    blocks = _blocks(scan, chosen)
    main = blocks[0]
    if len(blocks) > 1 and sum(len(r.words) for r in main) == 1 and not _first_like(main[0].words[0].folded):
        later = blocks[1]
        if sum(len(r.words) for r in later) == 1 and _first_like(later[0].words[0].folded):
            main = main + later  # "Kowalczyk… c'est polonais. Tomasz."
    return main, strong or len(main[0].words) > 1


def read_name(tokens: tuple[Token, ...], asked: bool, scan: NameScan | None = None,
              claimed: frozenset[int] = frozenset()) -> NameFound | None:
    """The caller's name a turn gives. ``asked``: the assistant just asked for a name, so
    any words that can be a name are one; otherwise a name needs its introduction or its
    shape. Words in ``claimed`` belong to someone else's name (the patient's)."""
    if not tokens:
        return None
    scan = scan if scan is not None else scan_names(tokens, asked)
    runs, strong = caller_runs(scan, asked, claimed)
    if runs and asked:
        refused = refusal_words(scan.words)
        if all(w.at in refused for r in runs for w in r.words):
            runs = []  # "non je refuse": the words of a refusal are not a name
    if not runs:
        turned_down = refusal(scan.words) if asked else None
        return NameFound(None, turned_down, 0, len(tokens)) if turned_down else None
    segments, corrected = _gather(scan, runs)
    if not segments:
        return None
    person = person_of(segments, runs[0].title is not None)
    if person.first is None and person.last is None:
        return None
    issue: NameIssue | None = "first_only" if person.last is None else None
    used = frozenset(w.at for r in runs for w in r.words)
    return NameFound(person, issue, min(r.first for r in runs), max(r.last for r in runs), corrected,
                     strong or asked, used)


def name(text: str) -> Name | None:
    """The caller's name when a name was asked, or None when no full-enough name was given
    (a first name alone, a refusal, a question back)."""
    if not isinstance(text, str):
        return None
    found = read_name(tokenize(text), asked=True)
    if found is None or found.person is None or found.person.last is None:
        return None
    return Name(found.person.first, found.person.last)
