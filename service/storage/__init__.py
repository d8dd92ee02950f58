"""Storage: the Store and OperatorReads protocols (a Backend is both), served by SQLite (default,
also in memory) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from service.storage.base import Backend, Store, StoreError

SQLITE_FILE = "rdv.sqlite3"


def open_store(database_url: str | None, data_dir: Path, *, timeout: float = 2.0) -> Backend:
    """The store for ``RDV_DATABASE_URL`` (None → SQLite file in ``data_dir``); not opened yet.
    ``timeout`` (``RDV_STORE_TIMEOUT_SECONDS``) bounds how long SQLite waits for a lock and
    each turn-path call to PostgreSQL."""
    from service.storage.sqlite import SqliteStore

    if database_url is None:
        return SqliteStore(data_dir / SQLITE_FILE, timeout=timeout)
    if database_url == "memory:":
        return SqliteStore(Path(":memory:"), timeout=timeout)
    if database_url.startswith("sqlite:///"):
        return SqliteStore(Path(database_url.removeprefix("sqlite:///")), timeout=timeout)
    if database_url.startswith(("postgresql://", "postgres://")):
        from service.storage.postgres import PostgresStore

        return PostgresStore(database_url, timeout=timeout)
    raise StoreError(f"RDV_DATABASE_URL: unsupported store {database_url.split(':', 1)[0]!r}")


async def migrate(store: Store) -> None:
    """Apply pending schema migrations (opening the store does it; this is for ``rdv migrate``)."""
    await store.open()


__all__ = ["Backend", "Store", "StoreError", "migrate", "open_store"]
