"""Applies the SQL migrations in `migrations/` with yoyo, for either backend."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from yoyo import get_backend, read_migrations

import migrations
from api.settings import Settings
from api.store.database import use_wal


def yoyo_url(settings: Settings) -> str:
    if settings.is_postgres:
        rest = settings.database_url.split("://", 1)[1]
        return f"postgresql+psycopg://{rest}"
    return f"sqlite:///{settings.sqlite_path}"


def apply_migrations(settings: Settings) -> list[str]:
    """Applies what is pending; returns the ids applied (empty when up to date)."""
    folder = migrations.POSTGRESQL if settings.is_postgres else migrations.SQLITE
    if not settings.is_postgres:
        # Before any other connection: every later one, ours or the event
        # store's, then finds WAL and has no switch to race for.
        with closing(sqlite3.connect(settings.sqlite_path)) as conn:
            use_wal(conn)
    backend = get_backend(yoyo_url(settings))
    try:
        pending = read_migrations(str(folder))
        with backend.lock():
            todo = backend.to_apply(pending)
            backend.apply_migrations(todo)
        return [m.id for m in todo]
    finally:
        backend.connection.close()
