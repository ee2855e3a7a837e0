"""Every setting of the platform, read from the environment (prefix CRM_)."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", frozen=True)

    database_url: str = Field(
        default="sqlite:///./crm.db",
        description="postgresql://user@host:port/db for PostgreSQL; unset means the SQLite file ./crm.db",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key for the national-ID HMAC. Unset: read (or create) the file named by CRM_SECRET_KEY_FILE",
    )
    secret_key_file: Path = Field(
        default=Path("./crm-secret.key"),
        description="File holding the HMAC key when CRM_SECRET_KEY is unset (created 0600 on first use)",
    )
    log_format: str = Field(
        default="auto", description="json | console | auto (console on a terminal)"
    )
    log_level: str = Field(default="INFO")
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, description="Largest request body accepted (413 above)"
    )
    max_batch_events: int = Field(
        default=1000, description="Most events in one POST /v1/events"
    )
    max_event_bytes_in_flight: int = Field(
        default=1024 * 1024,
        ge=1,
        description="Body bytes of POST /v1/events one HTTP process works on at once; "
        "further posts wait, read but not parsed, in arrival order (a larger body runs alone)",
    )
    ingest_batch_events: int = Field(
        default=1000, description="Events per transaction in `crm ingest`"
    )
    aggregate_cache_size: int = Field(
        default=100_000,
        ge=0,
        description="Aggregates `crm ingest` keeps between batches (about 1 KB each); "
        "more than the accounts a monthly balance file touches avoids replaying their histories",
    )
    web_aggregate_cache_size: int = Field(
        default=2_000,
        ge=0,
        description="Aggregates each HTTP process of `crm serve` keeps between requests "
        "(about 1.5 KB each): every process holds its own, so at 100,000 a server's "
        "memory grew by 100 MB per process under weeks of posts; 2,000 posted "
        "single events as fast as 10,000 and held 8-13 MB less per process",
    )
    ingest_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Processes validating ahead of the writer in `crm ingest` (unset: one per spare core; 0: none)",
    )
    ingest_decide_ahead: bool = Field(
        default=True,
        description="`crm ingest` (without --strict, with a validation worker): a worker process "
        "applies the rules a batch ahead while this one validates and saves",
    )
    read_wait_seconds: float = Field(
        default=5.0, description="Longest a read waits for min_position"
    )
    projection_poll_seconds: float = Field(
        default=0.05, description="How often projections poll for new events"
    )
    projection_gather_seconds: float = Field(
        default=0.03,
        ge=0,
        le=1,
        description="PostgreSQL: after a page of new events the projections wait this "
        "long before reading the next, so a busy log is read in larger pages",
    )
    db_pool_size: int = Field(
        default=8,
        description="PostgreSQL connections per process for the views, the writes and "
        "the reads that take a worker thread",
    )
    read_pool_size: int = Field(
        default=2,
        ge=1,
        le=64,
        description="PostgreSQL: connections per HTTP process for the live household and "
        "contact-history reads (one short statement each, on the event loop); a few keep "
        "the database's cores busy, and more only make its backends contend",
    )
    web_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="HTTP server processes in `crm serve` (one per core pays on PostgreSQL)",
    )
    serve_projections: bool = Field(
        default=True,
        description="`crm serve` follows the log with the projections; false where "
        "one `crm project` feeds them for every server (several web hosts, one "
        "projector), so that they do not take the web processes' cores",
    )
    commit_delay_seconds: float = Field(
        default=0.002,
        ge=0,
        le=0.05,
        description="Group commit: while posts come together, a group waits up to this "
        "long after its first post for others to join it (0: no wait)",
    )

    @property
    def validation_workers(self) -> int:
        if self.ingest_workers is not None:
            return self.ingest_workers
        return max(0, (os.cpu_count() or 1) - 1)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def sqlite_path(self) -> str:
        if self.is_postgres:
            raise ValueError("not an SQLite database URL")
        return self.database_url.removeprefix("sqlite:///")

    @property
    def postgres_parts(self) -> dict[str, str]:
        url = urlsplit(self.database_url)
        return {
            "host": url.hostname or "127.0.0.1",
            "port": str(url.port or 5432),
            "user": unquote(url.username or "postgres"),
            "password": unquote(url.password or ""),
            "dbname": url.path.lstrip("/") or "postgres",
        }

    @cached_property
    def national_id_key(self) -> bytes:
        if self.secret_key:
            return self.secret_key.get_secret_value().encode()
        path = self.secret_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()
