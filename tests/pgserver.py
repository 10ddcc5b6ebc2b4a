"""A database of its own on the PostgreSQL server the tests use, dropped afterwards.

The server is named by SYNDICATOR_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres,
the one `.ci/run` installs and starts). It is read when this module is imported, before the
fixtures clear SYNDICATOR_* variables. A server that cannot be reached fails the test: nothing
here is skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from syndicator.store.pg import Database

ADMIN_URL = os.environ.get("SYNDICATOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + name))


def create_database() -> str:
    name = "syndicator_test_" + secrets.token_hex(6)
    admin = Database(ADMIN_URL)
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    return name


def drop_database(name: str) -> None:
    admin = Database(ADMIN_URL)
    try:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty database."""
    name = create_database()
    try:
        yield database_url(name)
    finally:
        drop_database(name)
