"""Which understanding and dialogue rules are running: a hash of the engine's source files.

``rdv_build_info{engine_revision}`` carries it, so a dashboard can split any rate (the
not-understood share, conversion) by the rules that produced it, even between two builds
of the same package version. Computed once, at start-up, from the files on disk.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

ENGINE_DIR = Path(__file__).parent / "engine"
REVISION_CHARS = 12


def source_files(root: Path = ENGINE_DIR) -> list[Path]:
    """The engine's and understanding's sources and data files, in a stable order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


@functools.cache
def engine_revision(root: Path = ENGINE_DIR) -> str:
    """The first hex digits of a SHA-256 over every engine file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:REVISION_CHARS]
