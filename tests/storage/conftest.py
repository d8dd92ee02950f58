"""The store tests' fixtures, shared by the contract, the guards and the PostgreSQL modules: each
backend in turn on a fresh database, and PostgreSQL's."""

from tests.storage.test_contract import backend, postgres, postgres_problem, store

__all__ = ["backend", "postgres", "postgres_problem", "store"]
