"""The docs that are generated from code are current."""

from __future__ import annotations

from pathlib import Path

from scripts.events_doc import render


def test_events_doc_matches_the_catalogue() -> None:
    doc = Path(__file__).parents[1] / "docs" / "events.md"
    assert doc.read_text() == render(), "run: python scripts/events_doc.py"
