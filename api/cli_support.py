"""What every `crm` sub-command shares: the platform from the environment, a clean failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
import typer

from api.bootstrap import Platform, build_platform, settings_from_env
from api.store.database import DatabaseUnavailable


def fail(message: str, code: int = 1) -> NoReturn:
    """A message on stderr and a non-zero exit, instead of a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def platform_from_env(*, serving: bool = False) -> Iterator[Platform]:
    try:
        platform = build_platform(settings_from_env(), serving=serving)
    except (DatabaseUnavailable, psycopg.OperationalError) as error:
        fail(f"cannot reach the database: {str(error).splitlines()[0]}")
    try:
        yield platform
    finally:
        platform.close()
