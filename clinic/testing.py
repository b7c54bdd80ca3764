"""Helpers shared by the test suites of every app."""

from django.db import connection


def audit_write_queries() -> int:
    """Queries that writing one audit row costs: savepoint, the previous hash, insert, release, and on
    PostgreSQL the advisory lock that serialises the hash chain."""
    return 5 if connection.vendor == "postgresql" else 4
