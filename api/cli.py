"""The `crm` command: serve, migrate, keys, ingest, demo, project, rebuild."""

from __future__ import annotations

import signal
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from api.audit.cli import audit_cli
from api.bootstrap import Platform, settings_from_env
from api.cli_support import fail, platform_from_env
from api.keys import ROLES, create_key, revoke_key
from api.store.ingest import Report
from api.store.migrate import apply_migrations
from api.store.prepare import (
    Invalid,
    Parse,
    Pending,
    Prepared,
    Preparer,
    parse_json_line,
)

cli = typer.Typer(
    help="Event-sourced customer interaction platform.",
    no_args_is_help=True,
    add_completion=False,
)
keys_cli = typer.Typer(help="Create and revoke API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(audit_cli, name="audit")


@cli.command()
def migrate() -> None:
    """Apply pending database migrations."""
    applied = apply_migrations(settings_from_env())
    typer.echo(
        f"applied {len(applied)} migration(s)"
        + (": " + ", ".join(applied) if applied else "")
    )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="HTTP server processes (default: CRM_WEB_WORKERS, 1)."
        ),
    ] = None,
    projections: Annotated[
        bool | None,
        typer.Option(
            "--projections/--no-projections",
            help="Follow the log with the projections here (default: "
            "CRM_SERVE_PROJECTIONS, true). --no-projections: `crm project` runs "
            "them elsewhere, once for every server.",
        ),
    ] = None,
) -> None:
    """Run the HTTP API and the projections (migrates an empty database first).

    With one process, the projections run in a supervised child process; with
    --workers N, the N HTTP processes are children and this process, which
    only supervises them, runs the projections itself. With --no-projections
    the views move only as a `crm project` elsewhere moves them; reads that
    pass min_position wait for it all the same."""
    import uvicorn

    from api.web_protocol import OneWriteHttpToolsProtocol
    from api.web_workers import serve_workers
    from api.worker import projection_worker, web_workers_env

    with platform_from_env(serving=True) as platform:
        count = workers or platform.settings.web_workers
        follow = platform.settings.serve_projections
        if projections is not None:
            follow = projections
        if count > 1:
            # Each worker process builds its own platform (see app_from_env); they
            # share the log through the database, as separate servers would.
            if follow:
                platform.runner.start()
            try:
                with web_workers_env():
                    serve_workers(
                        uvicorn.Config(
                            "api.http.app:app_from_env",
                            factory=True,
                            workers=count,
                            host=host,
                            port=port,
                            log_config=None,
                            access_log=False,
                            http=OneWriteHttpToolsProtocol,
                        )
                    )
            finally:
                platform.runner.stop()
            return
        # Imported here: with --workers N the parent only supervises (and runs the
        # projections), and FastAPI would add 13 MB to it for nothing.
        from api.http.app import create_app

        with projection_worker() if follow else nullcontext():
            platform.runner.followed_elsewhere = True
            app = create_app(platform)
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                http=OneWriteHttpToolsProtocol,
            )


@cli.command()
def project() -> None:
    """Run the projections alone, following the log (a worker process)."""
    from api.worker import stop_when_orphaned

    with platform_from_env() as platform:
        signal.signal(signal.SIGTERM, lambda *_: platform.runner.stop())
        stop_when_orphaned(platform.runner.stop)
        try:
            platform.runner.run_forever()
        except KeyboardInterrupt:
            platform.runner.stop()


@cli.command()
def rebuild(
    names: Annotated[
        list[str] | None, typer.Argument(help="Projections to rebuild (default: all).")
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Processes rebuilding views side by side on PostgreSQL (default: one per CPU for a log of 200,000 events or more, else one).",
        ),
    ] = None,
) -> None:
    """Rebuild projections from the log."""
    import os

    from api.parallel_rebuild import default_jobs, rebuild_in_processes

    with platform_from_env() as platform:
        known = [p.name for p in platform.runner.projections]
        unknown = [n for n in names or [] if n not in known]
        if unknown:
            fail(
                f"unknown projection(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        chosen = names or known
        processes = jobs or default_jobs(platform, os.cpu_count() or 1)
        if processes > 1 and len(chosen) > 1 and platform.settings.is_postgres:
            count = rebuild_in_processes(chosen, processes)
        else:
            count = platform.runner.rebuild(names or None)
        typer.echo(f"rebuilt {', '.join(chosen) or 'nothing'} from {count} event(s)")


@keys_cli.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    customer_id: Annotated[
        str | None,
        typer.Option(help="For role customer: the customer the key is bound to."),
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="A note saying who holds the key.")
    ] = None,
) -> None:
    """Create an API key; the key is the last line printed (shown only once)."""
    with platform_from_env() as platform:
        try:
            key = create_key(platform.db, role, customer_id, label)
        except ValueError as error:
            fail(str(error), code=2)
        typer.echo(f"created a {role} key (store it now; only its hash is kept):")
        typer.echo(key)


@keys_cli.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key, or its first 10 characters.")],
) -> None:
    """Revoke an API key."""
    with platform_from_env() as platform:
        count = revoke_key(platform.db, key)
    if count == 0:
        fail("no active key matches")
    typer.echo(f"revoked {count} key(s)")


@cli.command()
def ingest(
    file: Annotated[
        str, typer.Argument(help="JSON Lines file of event envelopes, or - for stdin.")
    ],
    strict: Annotated[
        bool,
        typer.Option(help="Stop at the first bad line; store nothing from its batch."),
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(help="Events per transaction.")
    ] = None,
    file_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="jsonl (event envelopes) or csv (monthly balance file: account_id,balance,as_of). Default: by the file's extension.",
        ),
    ] = "auto",
    source: Annotated[
        str, typer.Option(help="For csv: the system the balances come from.")
    ] = "core-banking",
) -> None:
    """Ingest events: validated, idempotent by event_id, committed in batches."""
    if file_format == "auto":
        file_format = "csv" if file.lower().endswith(".csv") else "jsonl"
    if file_format not in {"jsonl", "csv"}:
        fail(f"unknown format {file_format!r}; use jsonl or csv", code=2)
    if file_format == "csv":
        from api.balance_file import checked_source

        try:
            source = checked_source(source)
        except ValueError as error:
            fail(f"--source: {error}", code=2)
    with platform_from_env() as platform:
        size = batch_size or platform.settings.ingest_batch_events
        stream = sys.stdin if file == "-" else _open(file)
        parse, items = (
            _csv_items(stream, source)
            if file_format == "csv"
            else (parse_json_line, _jsonl_items(stream))
        )
        totals = _ingest_items(platform, items, size, strict, _progress(stream), parse)
    typer.echo(
        f"stored {totals['stored']}, duplicates {totals['duplicate']}, rejected {totals['rejected']}"
    )
    if totals["rejected"]:
        raise typer.Exit(1)


@cli.command()
def demo(
    households: Annotated[
        int, typer.Option(help="How many households to generate.")
    ] = 50,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
) -> None:
    """Generate a realistic data set through the ingest path and build the views."""
    from api.demo_data import generate_demo_events

    with platform_from_env() as platform:
        totals = {"stored": 0, "duplicate": 0, "rejected": 0}
        batch: list[Any] = []
        for event in generate_demo_events(households=households, seed=seed):
            batch.append(event)
            if len(batch) >= 1000:
                _add(totals, platform.ingestor.ingest(batch, atomic=False), None)
                batch = []
        if batch:
            _add(totals, platform.ingestor.ingest(batch, atomic=False), None)
        platform.runner.bring_up_to_date()
    typer.echo(
        f"demo: stored {totals['stored']}, duplicates {totals['duplicate']}, rejected {totals['rejected']}"
    )
    if totals["rejected"]:
        raise typer.Exit(1)


def _open(file: str) -> TextIO:
    path = Path(file)
    if not path.is_file():
        fail(f"no such file: {file}", code=2)
    return path.open(encoding="utf-8", errors="surrogateescape")


def _jsonl_items(stream: TextIO) -> Iterator[tuple[int, Any, int]]:
    """(line number, the line's text or None, bytes read) for each line.

    Lines are parsed where they are validated (see api.store.prepare), so a
    validation worker takes that work off the writer."""
    for number, line in enumerate(stream, start=1):
        size = len(line.encode(errors="surrogateescape"))
        yield number, line if line.strip() else None, size


def _csv_items(
    stream: TextIO, source: str
) -> tuple[Parse, Iterator[tuple[int, Any, int]]]:
    """The monthly balance file: each row is sent as it is read, and becomes a
    BalanceReported event where it is validated (`balance_row_parser`)."""
    import csv

    from api.balance_file import COLUMNS, balance_row_parser, missing_columns

    reader = csv.reader(stream)
    header = [name.strip() for name in next(reader, [])]
    missing = missing_columns(header)
    if missing:
        # Every row would fail alike: said once, before anything is stored.
        fail(
            f"the header lacks {', '.join(missing)} "
            f"(a balance file's columns are {','.join(COLUMNS)})",
            code=2,
        )

    def rows() -> Iterator[tuple[int, Any, int]]:
        for row in reader:
            if row:  # a blank line is no row
                yield reader.line_num, row, sum(len(v) + 1 for v in row)

    return balance_row_parser(header, source), rows()


def _ingest_items(
    platform: Platform,
    items: Iterator[tuple[int, Any, int]],
    size: int,
    strict: bool,
    progress: Any,
    parse: Parse | None = None,
) -> dict[str, int]:
    """Stores `items`; `parse` turns each into an envelope (in the validation worker)."""
    settings = platform.settings
    if not strict and settings.validation_workers > 0 and settings.ingest_decide_ahead:
        return _ingest_deciding_ahead(platform, items, size, progress, parse)
    totals = {"stored": 0, "duplicate": 0, "rejected": 0}
    # Batches being validated ahead of the writer: (result, their line numbers).
    ahead: deque[tuple[Pending, list[int]]] = deque()
    with Preparer(
        platform.settings.national_id_key,
        platform.settings.validation_workers,
        parse=parse,
    ) as preparer:
        for batch, line_numbers, read in _batches(items, size):
            ahead.append((preparer.submit(batch), line_numbers))
            while len(ahead) > BATCHES_AHEAD:
                _flush(platform, *ahead.popleft(), totals, strict)
            if progress is not None:
                progress.update(read)
        while ahead:
            _flush(platform, *ahead.popleft(), totals, strict)
    if progress is not None:
        progress.render_finish()
    return totals


BATCHES_AHEAD = 2


def _ingest_deciding_ahead(
    platform: Platform,
    items: Iterator[tuple[int, Any, int]],
    size: int,
    progress: Any,
    parse: Parse | None,
) -> dict[str, int]:
    """`_ingest_items` with the rules applied in a worker process ahead of the
    saves (api.store.decide_ahead). The first batch is stored in this process
    alone, so that a small file never starts a process."""
    from api.store.decide_ahead import AheadPipeline, DecidingWorker, FileBatches

    totals = {"stored": 0, "duplicate": 0, "rejected": 0}
    file = FileBatches(
        parse,
        done=lambda report, lines: _add(totals, report, lines),
        unreadable=lambda line, problem: _reject_line(line, problem, totals, False),
    )
    pipeline = AheadPipeline(platform.ingestor, file)
    worker: DecidingWorker | None = None
    try:
        for number, (batch, line_numbers, read) in enumerate(_batches(items, size)):
            if number == 1:
                worker = DecidingWorker(platform.settings)
                pipeline.use(worker)
            pipeline.submit(batch, line_numbers)
            if progress is not None:
                progress.update(read)
        pipeline.finish()
    finally:
        pipeline.close()
        if worker is not None:
            worker.close()
    if progress is not None:
        progress.render_finish()
    return totals


def _batches(
    items: Iterator[tuple[int, Any, int]], size: int
) -> Iterator[tuple[list[Any], list[int], int]]:
    """`items` in batches of `size`: (items, their line numbers, bytes read)."""
    batch: list[Any] = []
    line_numbers: list[int] = []
    read = 0
    for number, event, length in items:
        read += length
        if event is None:
            continue
        batch.append(event)
        line_numbers.append(number)
        if len(batch) >= size:
            yield batch, line_numbers, read
            batch, line_numbers, read = [], [], 0
    if batch:
        yield batch, line_numbers, read


def _flush(
    platform: Platform,
    prepared: Pending,
    lines: list[int],
    totals: dict[str, int],
    strict: bool,
) -> None:
    from api.store.ingest import BatchRejected

    results, lines = _report_unparsed(prepared.result(), lines, totals, strict)
    if strict:
        try:
            report = platform.ingestor.ingest_prepared(
                results, atomic=True, optimistic=True
            )
        except BatchRejected as error:
            for problem in error.problems:
                typer.echo(
                    f"line {lines[problem.index]}: {problem.field or 'event'}: {problem.message} [{problem.code}]",
                    err=True,
                )
            fail("stopped (--strict): nothing from this batch was stored")
    else:
        report = platform.ingestor.ingest_prepared(
            results, atomic=False, optimistic=True
        )
    _add(totals, report, lines)


def _reject_line(
    number: int, problem: str, totals: dict[str, int], strict: bool
) -> None:
    """A line that never became an event (unreadable, not JSON): reported, counted."""
    typer.echo(f"line {number}: {problem}", err=True)
    totals["rejected"] += 1
    if strict:
        fail(f"stopped at line {number} (--strict); earlier batches were stored")


def _report_unparsed(
    results: list[Prepared | Invalid],
    lines: list[int],
    totals: dict[str, int],
    strict: bool,
) -> tuple[list[Prepared | Invalid], list[int]]:
    """Reports the lines that were not JSON; returns the rest with their line numbers."""
    kept: list[Prepared | Invalid] = []
    kept_lines: list[int] = []
    for result, number in zip(results, lines, strict=True):
        if isinstance(result, Invalid) and not result.parsed:
            _reject_line(number, result.problems[0][1], totals, strict)
            continue
        kept.append(result)
        kept_lines.append(number)
    return kept, kept_lines


def _add(totals: dict[str, int], report: Report, lines: list[int] | None) -> None:
    for outcome in report.outcomes:
        totals[outcome.status] += 1
        if outcome.status == "rejected" and outcome.error is not None:
            where = (
                f"line {lines[outcome.index]}" if lines else f"event {outcome.index}"
            )
            field = getattr(outcome.error, "field", "") or "event"
            typer.echo(
                f"{where}: {field}: {outcome.error.message} [{outcome.error.code}]",
                err=True,
            )


def _progress(stream: TextIO) -> Any:
    """A progress bar over the file's bytes, only on a terminal and for a real file."""
    if not sys.stderr.isatty() or stream is sys.stdin:
        return None
    size = Path(stream.name).stat().st_size
    return typer.progressbar(length=size, label="ingesting", file=sys.stderr)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
