"""`crm audit ...`: verify, checkpoint, keygen, export, replay, rebuild-check."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer

from api.audit.checkpoint import (
    BadCheckpoint,
    generate_keys,
    load_checkpoint,
    load_private_key,
    sign_head,
    write_checkpoint,
)
from api.audit.export import (
    LogFilter,
    Scan,
    csv_lines,
    jsonl_lines,
    scan_log,
    start_after,
)
from api.audit.verify import Checkpoint, log_bound, verify_log
from api.bootstrap import Platform
from api.cli_support import fail, platform_from_env

audit_cli = typer.Typer(
    help="Auditors' tools: verify the log, export it, replay it.", no_args_is_help=True
)


def _echo_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


@contextmanager
def _progress(length: int, label: str) -> Iterator[Any]:
    """A progress bar on a terminal only; otherwise a sink."""
    if not sys.stderr.isatty() or length <= 0:
        yield lambda _n: None
        return
    with typer.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: not an RFC 3339 time: {value}", code=2)
    if moment.tzinfo is None:
        fail(f"{option}: needs a UTC offset (e.g. 2025-03-01T10:00:00+08:00)", code=2)
    return moment


@audit_cli.command()
def verify(
    checkpoint: Annotated[
        Path | None, typer.Option(help="A signed checkpoint file to check against.")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="The PEM public key that signed the checkpoint.")
    ] = None,
) -> None:
    """Recompute the hash chain from the stored events; exit 1 on any mismatch."""
    expected: Checkpoint | None = None
    if checkpoint is not None:
        if public_key is None:
            fail("--checkpoint needs --public-key", code=2)
        try:
            expected = load_checkpoint(checkpoint, public_key)
        except (BadCheckpoint, OSError, ValueError) as error:
            fail(f"checkpoint refused: {error}")
    with platform_from_env() as platform:
        bound = log_bound(platform.db)
        with _progress(bound, "verifying") as advance:
            report = verify_log(
                platform.db, checkpoint=expected, bound=bound, on_progress=advance
            )
    _echo_json(report.as_json())
    if not report.ok:
        raise typer.Exit(1)


@audit_cli.command()
def keygen(
    out_private: Annotated[
        Path,
        typer.Option(
            help="Where to write the private key (keep it off the database host)."
        ),
    ],
    out_public: Annotated[Path, typer.Option(help="Where to write the public key.")],
) -> None:
    """Make an Ed25519 key pair for signing checkpoints."""
    if out_private.exists():
        fail(f"{out_private} exists; not overwriting a key", code=2)
    generate_keys(out_private, out_public)
    typer.echo(f"wrote {out_private} (private) and {out_public} (public)")


@audit_cli.command("checkpoint")
def make_checkpoint(
    private_key: Annotated[Path, typer.Option(help="The PEM Ed25519 private key.")],
    out: Annotated[
        Path,
        typer.Option(
            help="The checkpoint file to write (keep it outside the database)."
        ),
    ],
) -> None:
    """Verify the log, then write a signed statement of its head position and hash."""
    try:
        key = load_private_key(private_key)
    except (BadCheckpoint, OSError, ValueError) as error:
        fail(f"cannot read the private key: {error}", code=2)
    with platform_from_env() as platform:
        bound = log_bound(platform.db)
        with _progress(bound, "verifying") as advance:
            report = verify_log(platform.db, bound=bound, on_progress=advance)
    if not report.ok:
        _echo_json(report.as_json())
        fail("the log failed verification; no checkpoint written")
    document = sign_head(report, key)
    write_checkpoint(document, out)
    _echo_json(document["statement"])


@audit_cli.command()
def export(
    format: Annotated[
        str, typer.Option("--format", help="jsonl (re-ingestible envelopes) or csv.")
    ] = "jsonl",
    out: Annotated[
        Path | None, typer.Option(help="File to write (default: standard output).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Recorded at or after (RFC 3339).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Recorded before (RFC 3339).")
    ] = None,
    customer: Annotated[
        str | None, typer.Option(help="Only events concerning this customer.")
    ] = None,
    household: Annotated[
        str | None,
        typer.Option(help="Only events concerning anyone ever in this household."),
    ] = None,
    type: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only these event types (repeatable)."),
    ] = None,
    include_platform_events: Annotated[
        bool,
        typer.Option(
            help="Also export events the platform makes itself (mailing decisions)."
        ),
    ] = False,
) -> None:
    """Stream the log, filtered, in position order (constant memory on any log size)."""
    if format not in ("jsonl", "csv"):
        fail("--format must be jsonl or csv", code=2)
    log_filter = LogFilter(
        types=frozenset(type) if type else None,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        include_platform_events=include_platform_events,
    )
    with platform_from_env() as platform:
        _select_customers(platform, log_filter, customer, household)
        start = start_after(platform, log_filter)
        head = int(platform.app.recorder.max_notification_id() or 0)
        sink: IO[bytes] = out.open("wb") if out is not None else sys.stdout.buffer
        try:
            with _progress(head - start, "exporting") as advance:
                entries = scan_log(
                    platform,
                    log_filter,
                    after_position=start,
                    scan=Scan(),
                    on_page=advance,
                )
                if format == "jsonl":
                    for line in jsonl_lines(entries):
                        sink.write(line)
                else:
                    for text in csv_lines(entries):
                        sink.write(text.encode())
        finally:
            if out is not None:
                sink.close()
            else:
                sink.flush()


def _select_customers(
    platform: Platform,
    log_filter: LogFilter,
    customer: str | None,
    household: str | None,
) -> None:
    from api.audit.export import household_customers, owned_streams

    if customer is None and household is None:
        return
    ids: set[str] = set()
    if customer is not None:
        ids.add(customer.lower())
    if household is not None:
        with platform.db.transaction() as cur:
            ids |= household_customers(cur, household.lower())
    log_filter.customer_ids = frozenset(ids)
    log_filter.owned_streams = owned_streams(platform, log_filter.customer_ids)


@audit_cli.command()
def replay(
    as_of: Annotated[
        str, typer.Option(help="RFC 3339 time: the views as recorded by then.")
    ],
    household: Annotated[
        str | None, typer.Option(help="Print this household as of then.")
    ] = None,
    customer: Annotated[
        str | None, typer.Option(help="Print this customer as of then.")
    ] = None,
) -> None:
    """Replay the log up to a moment and print what the views said then."""
    from api.audit.replay import customer_as_of, household_as_of

    moment = _when(as_of, "--as-of")
    assert moment is not None
    with platform_from_env() as platform:
        if household is not None:
            answer = household_as_of(platform, household.lower(), moment)
        elif customer is not None:
            answer = customer_as_of(platform, customer.lower(), moment)
        else:
            from api.audit.replay import last_position_by

            answer = {
                "as_of": moment.isoformat(),
                "position": last_position_by(platform, moment),
            }
    if answer is None:
        fail("no such household or customer at that time")
    _echo_json(answer)


@audit_cli.command("rebuild-check")
def rebuild_check_command() -> None:
    """Rebuild every view from the log in a scratch database and diff with the live one; exit 1 on any difference."""
    from api.audit.rebuild_check import rebuild_check

    with platform_from_env() as platform:
        report = rebuild_check(platform)
    _echo_json(report.as_json())
    if not report.identical:
        raise typer.Exit(1)
