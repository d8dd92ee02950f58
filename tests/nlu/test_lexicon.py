"""The NLU's word lists and phrase tables are package data: every file is shipped in the wheel,
reads back, and a malformed table is refused at import rather than read wrongly."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from service.engine.nlu import lexicon

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "service" / "engine" / "nlu" / "data"


def test_every_data_file_is_package_data() -> None:
    """Each file beside the NLU is matched by a package-data pattern, so the wheel carries it."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["package-data"]
    shipped = patterns["service"]
    for path in DATA.iterdir():
        relative = path.relative_to(ROOT / "service").as_posix()
        assert any(fnmatch(relative, p) for p in shipped), relative


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.txt") if not p.name.startswith("LICENSE")))
def test_each_list_or_table_reads_back_without_comments(name: str) -> None:
    """Every list has words and every table section entries, none of them a comment."""
    if any(line.startswith("[") for line in (DATA / name).read_text("utf-8").splitlines()):
        table = lexicon.entries(name)
        assert table and all(table.values()), table
        found = tuple(entry for values in table.values() for entry in values)
    else:
        found = lexicon.words(name)
    assert found
    assert not any("#" in w or w.startswith("[") for w in found)


def test_tables_keep_file_order_and_split_phrases() -> None:
    """The intent tables keep their keys in file order, phrases split into words."""
    table = lexicon.phrases("intent_phrases.txt")
    assert list(table)[:2] == ["human", "faq:address"]
    assert ("parler", "a", "quelqu'un") in table["human"]
    assert "se garer" in lexicon.entries("intent_words.txt")["faq:parking"]


def test_an_entry_before_any_key_is_refused() -> None:
    """A table line before its first ``[key]`` is an error naming the file, not a silent drop."""
    assert lexicon.table_of("ok.txt", ["[key]", "entry", "[other]"]) == {"key": ("entry",), "other": ()}
    with pytest.raises(ValueError, match=r"broken\.txt: an entry before the first \[key\]"):
        lexicon.table_of("broken.txt", ["orphan", "[key]", "entry"])
