"""Derive ``service/engine/nlu/data/first_names_fr.tsv`` from names-dataset (Apache 2.0 by the
LICENSE it ships, copied beside the output; MIT by its metadata).

names-dataset ships first and last names seen in 105 countries with their popularity rank
per country (a 55 MB wheel, five seconds and a gigabyte to load): too heavy for the turn
path, so this script keeps what French callers need: every first name ranked in France or in
a country many French callers' families come from, with its best first-name rank and the
best rank of the same word as a last name. The understanding reads the two ranks to tell
"Dupont Marie" from "Marie Dupont" and "c'est Ghislaine" (a first name alone) from "c'est
Martin".

Run once when the data should be refreshed (not at install or test time):

    python -m venv /tmp/nd && /tmp/nd/bin/pip install 'rdv[names]' # or names-dataset==3.3.1
    /tmp/nd/bin/python tools/derive_first_names.py
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import unicodedata
from pathlib import Path

import names_dataset  # type: ignore[import-not-found]

OUT = Path(__file__).parents[1] / "service" / "engine" / "nlu" / "data" / "first_names_fr.tsv"
# Rank multipliers: a rank in France counts as is; elsewhere it counts as a worse rank.
COUNTRIES = {"FR": 1.0, "BE": 2.0, "CH": 2.0, "LU": 2.0, "CA": 3.0, "MA": 3.0, "DZ": 3.0, "TN": 3.0, "CM": 4.0,
             "HT": 4.0, "MU": 4.0, "BF": 4.0, "IT": 4.0, "PT": 4.0, "ES": 4.0, "PL": 4.0, "IE": 4.0, "GB": 5.0,
             "TR": 5.0, "DE": 5.0, "KH": 5.0}
MAX_RANK = 8000
ABSENT = 0


def fold(name: str) -> str:
    """Lower case, no accents, spaces as hyphens ("Charles Edouard" → "charles-edouard")."""
    low = unicodedata.normalize("NFD", name.lower().replace("’", "'"))
    return "".join(c for c in low if unicodedata.category(c) != "Mn").replace(" ", "-")


def best(ranks: dict[str, int | None]) -> int | None:
    """The best weighted rank over the kept countries."""
    scored = [r * COUNTRIES[c] for c, r in ranks.items() if c in COUNTRIES and r is not None]
    return math.ceil(min(scored)) if scored else None


def main() -> None:
    """Write the compact file: folded name, first-name rank, last-name rank (0 = never a last name)."""
    folder = Path(os.path.dirname(names_dataset.__file__)) / "v3"
    with gzip.open(folder / "first_names.pkl.gz") as fh:
        first = pickle.load(fh)
    with gzip.open(folder / "last_names.pkl.gz") as fh:
        last = pickle.load(fh)
    table: dict[str, tuple[int, int]] = {}
    for name, info in first.items():
        rank = best(info.get("rank") or {})
        key = fold(name)
        if rank is None or rank > MAX_RANK or not key.replace("-", "").replace("'", "").isalpha() or len(key) < 2:
            continue
        as_last = best((last.get(name) or {}).get("rank") or {}) or ABSENT
        old = table.get(key)
        if old is not None:
            rank = min(rank, old[0])
            as_last = min(x for x in (as_last, old[1]) if x) if (as_last or old[1]) else ABSENT
        table[key] = (rank, as_last)
    lines = [f"{k}\t{r}\t{lr}" for k, (r, lr) in sorted(table.items())]
    OUT.write_text("# derived from names-dataset 3.3.1 (Apache-2.0) by tools/derive_first_names.py: "
                   "folded first name, best first-name rank, best last-name rank (0: none)\n"
                   + "\n".join(lines) + "\n", "utf-8")
    print(f"{len(lines)} first names written to {OUT}")


if __name__ == "__main__":
    main()
