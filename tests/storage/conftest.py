"""The store tests' PostgreSQL fixtures, shared by the contract and the PostgreSQL modules."""

from tests.storage.test_contract import postgres, postgres_problem

__all__ = ["postgres", "postgres_problem"]
