"""The recorded answers of the understanding code on every utterance the tests hold.

``tests/nlu/golden/extract.jsonl.gz`` keeps, for each text, the whole :class:`Extraction` in
several dialogue states and the answer of every per-task function (``intent``, ``name``,
``preference``…). ``test_extract_unchanged`` recomputes them field by field: a change that
is only meant to make understanding faster must leave every one of them as it was.

The texts are every utterance of the NLU data (``tests/nlu/data``, the blind sets' turns and
calls included), every string literal of the test modules that reads like one, and a few
edge cases (empty, very long, unusual characters). Each is read in the contexts the dialogue
gives it: its own when the data has one, then ``CONTEXTS``.

Regenerate only when the understanding is *meant* to change (a new rule, a fixed miss), after
reviewing the differences the test reports, and commit the result with that change::

    .venv/bin/python -m tests.nlu.extract_golden
"""

from __future__ import annotations

import ast
import dataclasses
import gzip
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from service.engine import nlu
from service.engine.nlu.extract import ExtractContext, Extraction, extract
from tests.nlu.nlu_data import PRACTICE

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "extract.jsonl.gz"  # gzip: 20,000 cases, 6 MB as plain text
DATA = HERE / "data"
TESTS = HERE.parent
NOW = "2026-03-03T09:00:00+01:00"  # a Tuesday, for texts the data gives no date
# The states that change how a turn is read (a name asked, an appointment being changed,
# slots just read out), besides the record's own.
CONTEXTS = ("START", "QUALIF_NAME", "QUALIF_PREF", "CANCEL_IDENTIFY", "MODIFY_CONFIRM", "WAIT_CONFIRM")
EDGE_CASES = (
    "", " ", "...", "?", "euh…", "[inaudible]", "<bruit>", "allô ? allô ?", "9:15", "14h30", "l'", "d'",
    "je voudrais prendre rendez-vous " * 40, "OUI", "Œuvre cœur ÆSIR straße", "İstanbul ǅemal ﬁn",
    "e\u0301te\u0301 a\u0300 10 h", "’’ ‘ ` ´ ʼ", "- non -", "'oui'", "\x00\x1f bonjour\x7f", "06 12 34 56 78",
    "+33 6 12 34 56 78", "zéro six douze trente-quatre cinquante-six soixante-dix-huit", "rendez-vous 😀 jeudi",
    "je m'appelle Jean-Pierre O'Neil", "L E F E B V R E", "le 1er", "le 31 février", "du 3 au 5 mars",
    # "d'autre" dropped from the words but not from their bare forms: the intent reader raises
    "le secrétariat pour quelqu'un d'autre decaller",
)


def jsonable(value: Any) -> Any:
    """A dataclass, date, mapping or sequence as plain JSON values; a dataclass's fields that
    hold their default value are left out (a field missing is a field at its default)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) != _default(f)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING  # a required field is always kept


def extraction_fields(found: Extraction) -> dict[str, Any]:
    """Every field of an extraction but its text, as JSON values."""
    fields = jsonable(found)
    del fields["text"]
    return dict(fields)


def context_of(state: str, now: str, slots: tuple[str, ...] = ()) -> ExtractContext:
    """The extraction context of a recorded case (the slots as ISO start times)."""
    moment = datetime.fromisoformat(now).astimezone(PRACTICE.timezone)
    refs = tuple(nlu.SlotRef(datetime.fromisoformat(s), "") for s in slots)
    return ExtractContext(state, moment, refs, PRACTICE)


def default_slots(now: str) -> tuple[str, ...]:
    """Three slots after ``now``, as the dialogue reads them out."""
    moment = datetime.fromisoformat(now).replace(minute=0, second=0, microsecond=0)
    day = moment + timedelta(days=1)
    return tuple(s.isoformat() for s in (day.replace(hour=9), day.replace(hour=14, minute=30),
                                         (day + timedelta(days=1)).replace(hour=10)))


def _data_cases() -> Iterator[tuple[str, str, dict[str, Any] | None]]:
    """Each text of the NLU data with its date and its own context (None when the data
    gives no state)."""
    for path in sorted(DATA.rglob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            context = record.get("context") or {}
            now = context.get("now") or record.get("now") or NOW
            if isinstance(record.get("text"), str):
                state = context.get("state") or record.get("state")
                slots = tuple(s["start"] for s in context.get("slots", ())) or tuple(record.get("proposed", ()))
                yield record["text"], now, ({"state": state, "now": now, "slots": list(slots)} if state else None)
            for text in record.get("turns", ()):
                if isinstance(text, str):
                    yield text, now, None


def _test_literals() -> Iterator[str]:
    """String literals of the test modules that could be a caller's words (this module's
    and its test's left out: the cases must not change as they are edited)."""
    for path in sorted(TESTS.rglob("*.py")):
        if path.name in (Path(__file__).name, "test_extract_unchanged.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value \
                    and "\n" not in node.value and 0 < len(node.value) <= 400 and any(c.isalpha() for c in node.value):
                yield node.value


def cases() -> list[tuple[str, dict[str, Any]]]:
    """Every (text, context) to record, each once, in a stable order."""
    seen: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    texts: dict[str, str] = {}

    def add(text: str, context: dict[str, Any]) -> None:
        seen.setdefault((text, json.dumps(context, sort_keys=True)), (text, context))

    for text, now, own in _data_cases():
        if own is not None:
            add(text, own)
        texts.setdefault(text, now)
    for text in (*_test_literals(), *EDGE_CASES):
        texts.setdefault(text, NOW)
    for text, now in texts.items():
        for state in CONTEXTS:
            slots = default_slots(now) if state == "WAIT_CONFIRM" else ()
            add(text, {"state": state, "now": now, "slots": list(slots)})
    return list(seen.values())


def tasks(text: str, now: str) -> dict[str, Any]:
    """The per-task functions' answers for one text (an exception recorded by its type)."""
    moment = datetime.fromisoformat(now)
    slots = [nlu.SlotRef(datetime.fromisoformat(s), "") for s in default_slots(now)]
    calls: dict[str, Callable[[], object]] = {
        "intent": lambda: nlu.intent(text), "name": lambda: nlu.name(text),
        "preference": lambda: nlu.preference(text, moment), "constraints": lambda: nlu.constraints(text, moment),
        "yes_no": lambda: nlu.yes_no(text), "phone": lambda: nlu.phone(text), "filler": lambda: nlu.is_filler(text),
        "slot_choice": lambda: nlu.slot_choice(text, slots), "menu": lambda: nlu.menu_choice(text),
        "own_appointment": lambda: nlu.mentions_own_appointment(text),
    }
    answers: dict[str, Any] = {}
    for task, call in calls.items():
        try:
            answers[task] = jsonable(call())
        except Exception as error:  # noqa: BLE001 - recorded as behaviour, to be kept as well
            answers[task] = {"raises": type(error).__name__}
    return answers


def record(text: str, context: dict[str, Any]) -> dict[str, Any]:
    """One golden line: the case, its extraction, and (in START) the per-task answers."""
    found = extract(text, context_of(context["state"], context["now"], tuple(context["slots"])))
    line: dict[str, Any] = {"text": text, "context": context, "extraction": extraction_fields(found)}
    if context["state"] == "START" and not context["slots"]:
        line["tasks"] = tasks(text, context["now"])
    return line


def load() -> list[dict[str, Any]]:
    """The recorded cases, in order."""
    return [json.loads(line) for line in gzip.decompress(GOLDEN.read_bytes()).decode("ascii").split("\n") if line]


def main() -> int:
    """Write the golden file from the code as it is now."""
    GOLDEN.parent.mkdir(exist_ok=True)
    # ASCII JSON: a text may hold a lone surrogate or a line separator, which neither UTF-8
    # nor the file's one case per line could carry as they are.
    lines = [json.dumps(record(text, context), ensure_ascii=True, sort_keys=True, separators=(",", ":"))
             for text, context in cases()]
    # mtime 0: the same answers give the same file, so an unchanged regeneration shows no diff
    GOLDEN.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0))
    print(f"{GOLDEN.relative_to(TESTS.parent)}: {len(lines)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
