"""The composition root: settings -> database, event store, ingest, projections, web app.

Nothing connects at import time; `build_platform` is called by the CLI and by tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from api.settings import Settings
from api.store.application import CrmApplication, eventsourcing_env
from api.store.database import Database, PostgresDatabase, SQLiteDatabase
from api.store.ingest import Ingestor
from api.store.migrate import apply_migrations


@dataclass
class Platform:
    settings: Settings
    db: Database
    app: CrmApplication
    ingestor: Ingestor
    extras: dict[str, object] = field(default_factory=dict)

    def close(self) -> None:
        self.app.close()
        self.db.close()


def open_database(settings: Settings) -> Database:
    if settings.is_postgres:
        parts = settings.postgres_parts
        conninfo = " ".join(f"{k}={v}" for k, v in parts.items() if v) + " connect_timeout=5"
        return PostgresDatabase(conninfo, max_size=settings.db_pool_size)
    return SQLiteDatabase(settings.sqlite_path)


def build_platform(settings: Settings | None = None, *, migrate: bool = True) -> Platform:
    settings = settings or Settings()
    if migrate:
        apply_migrations(settings)
    db = open_database(settings)
    app = CrmApplication(env=eventsourcing_env(settings))
    ingestor = Ingestor(app, db, settings.national_id_key)
    return Platform(settings=settings, db=db, app=app, ingestor=ingestor)
