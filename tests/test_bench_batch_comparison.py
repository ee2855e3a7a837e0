"""Workload 4 beside `crm ingest` of its own kind of events (`ingest_fresh`).

The target compares 1,000-event posts with workload 1, the demo log's ingest;
the bench also ingests events like the posted ones, so that the HTTP edge's
own cost is seen apart from what those events cost to decide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import data, report, workloads_store
from bench.common import migrate, sqlite_create


def test_fresh_events_are_ingested_by_crm_ingest_every_one_stored(
    tmp_path: Path,
) -> None:
    url = sqlite_create(tmp_path, "fresh")
    migrate(url)
    demo = data.write_demo_jsonl(tmp_path / "demo.jsonl", households=3, seed=7)
    workloads_store.ingest_file(url, tmp_path / "demo.jsonl", demo.events)

    run = workloads_store.ingest_fresh(url, tmp_path, demo.customers, 250, seed=3)

    # ingest_file raises unless every one of the 250 was stored (contacts of
    # the demo's customers, and registrations of new ones).
    assert run["count"] == 250
    assert run["rate"] > 0
    lines = (tmp_path / "fresh-3.jsonl").read_bytes().splitlines()
    assert len(lines) == 250


def _results(batch: float, ingest: float, fresh: float | None) -> dict[str, Any]:
    workloads: dict[str, Any] = {
        "ingest_jsonl": {"postgresql": report.aggregate([{"rate": ingest}], None)},
        "post_batch": {"postgresql": report.aggregate([{"rate": batch}], None)},
    }
    if fresh is not None:
        workloads["ingest_fresh"] = {
            "postgresql": report.aggregate([{"rate": fresh}], None)
        }
    results = {"workloads": workloads, "machine": {"load_average": (0.0, 0.0, 0.0)}}
    report.check_targets(results)
    return results


def test_the_target_is_judged_against_workload_one_and_the_same_events_shown_beside() -> (
    None
):
    results = _results(batch=9_000, ingest=30_000, fresh=10_000)
    entry = results["workloads"]["post_batch"]["postgresql"]
    assert entry["vs_ingest"] == 0.3
    assert entry["met"] is False  # 0.9 of the same events' ingest does not meet it
    assert entry["vs_ingest_same_events"] == 0.9
    table = report.table(results)
    assert "0.300 of ingest_jsonl; 0.900 of ingest_fresh" in table
    fresh_line = next(
        line for line in table.splitlines() if line.startswith("ingest_fresh")
    )
    assert fresh_line.rstrip().endswith("-")  # no target of its own

    assert (
        _results(batch=25_000, ingest=30_000, fresh=None)["workloads"]["post_batch"][
            "postgresql"
        ]["met"]
        is True
    )
    entry = _results(9_000, 30_000, None)["workloads"]["post_batch"]["postgresql"]
    assert "vs_ingest_same_events" not in entry
