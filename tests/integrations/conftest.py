"""Fixtures for the integration tests: SQLite, and a PostgreSQL database of their own.

The PostgreSQL server is ``$ZEVENTS_TEST_POSTGRES_URL`` (a libpq URL of a database the
tests may connect to and create others from), else the one on 127.0.0.1:5432 with
trust authentication; each test module gets a database with a unique name, dropped
after it. With no server answering, the PostgreSQL tests are skipped, saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_url() -> str:
    return os.environ.get("ZEVENTS_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL (psycopg 3) of a fresh database, dropped after the module."""
    psycopg = pytest.importorskip("psycopg")
    admin = _admin_url()
    try:
        server = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {admin} ({exc})")
    name = f"zevents_test_{uuid.uuid4().hex[:12]}"
    with server:
        server.execute(f'CREATE DATABASE "{name}"')
        try:
            parts = urlsplit(admin)
            yield urlunsplit(("postgresql+psycopg", parts.netloc, f"/{name}", parts.query, ""))
        finally:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
