"""The composition root: settings -> database, event store, ingest, projections, web app.

Nothing connects at import time; `build_platform` is called by the CLI and by tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from api.gc_tuning import tune_garbage_collector
from api.logging import configure_logging
from api.settings import Settings
from api.store.application import CrmApplication, eventsourcing_env
from api.store.database import Database, PostgresDatabase, SQLiteDatabase
from api.store.group_commit import GroupCommitter
from api.store.ingest import Ingestor
from api.store.migrate import apply_migrations
from projections.registry import all_projections
from projections.runner import ProjectionRunner


@dataclass
class Platform:
    settings: Settings
    db: Database
    app: CrmApplication
    ingestor: Ingestor
    runner: ProjectionRunner
    committer: GroupCommitter
    extras: dict[str, object] = field(default_factory=dict)

    def close(self) -> None:
        self.runner.stop()
        self.committer.close()
        self.app.close()
        self.db.close()


def postgres_conninfo(settings: Settings) -> str:
    parts = settings.postgres_parts
    # No JIT: the views' statements are key lookups and bulk writes of a few
    # thousand rows; compiling one costs more (10 ms and up) than running it.
    return (
        " ".join(f"{k}={v}" for k, v in parts.items() if v)
        + " connect_timeout=5 options='-c jit=off'"
    )


def open_database(settings: Settings) -> Database:
    if settings.is_postgres:
        return PostgresDatabase(
            postgres_conninfo(settings), max_size=settings.db_pool_size
        )
    return SQLiteDatabase(settings.sqlite_path)


def settings_from_env() -> Settings:
    """The settings in the environment, with logging configured as they say."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return settings


def build_platform(
    settings: Settings | None = None, *, migrate: bool = True, serving: bool = False
) -> Platform:
    """`serving`: for an HTTP process of `crm serve`, whose writer keeps a smaller
    aggregate cache (`web_aggregate_cache_size`) than `crm ingest`'s."""
    settings = settings or Settings()
    tune_garbage_collector()
    if migrate:
        apply_migrations(settings)
    db = open_database(settings)
    app = CrmApplication(env=eventsourcing_env(settings))
    cache_size = (
        settings.web_aggregate_cache_size if serving else settings.aggregate_cache_size
    )
    ingestor = Ingestor(app, db, settings.national_id_key, cache_size)
    runner = ProjectionRunner(
        app,
        db,
        all_projections(),
        poll_seconds=settings.projection_poll_seconds,
        gather_seconds=settings.projection_gather_seconds,
        listen_conninfo=postgres_conninfo(settings) if settings.is_postgres else None,
    )
    return Platform(
        settings=settings,
        db=db,
        app=app,
        ingestor=ingestor,
        runner=runner,
        committer=GroupCommitter(ingestor, delay_seconds=settings.commit_delay_seconds),
    )
