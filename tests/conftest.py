"""Fixtures: every platform test runs on SQLite and on a real PostgreSQL server.

Each PostgreSQL test gets a fresh database cloned from a migrated template.
Without a server the PostgreSQL cases are skipped, except under CI=true,
where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from api.bootstrap import Platform, build_platform
from api.settings import Settings
from api.store.migrate import apply_migrations

ADMIN_URL = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEMPLATE = f"crm_test_template_{os.getpid()}"  # one per pytest process
SECRET = "test-secret-key"


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)


def _url_for(dbname: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    try:
        conn = _admin()
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {error}")
        pytest.skip(reason=f"PostgreSQL not reachable at {ADMIN_URL}: {error}")
    with conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    apply_migrations(Settings(database_url=_url_for(TEMPLATE), secret_key=SECRET))
    yield TEMPLATE
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    yield _url_for(name)
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crm.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url, secret_key=SECRET, secret_key_file=tmp_path / "key"
    )


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    built = build_platform(settings)
    yield built
    built.close()
