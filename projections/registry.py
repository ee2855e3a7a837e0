"""Every projection the platform runs, in one list (the runner feeds each in turn)."""

from __future__ import annotations

from projections.base import Projection
from projections.contact_history import ContactHistoryProjection


def all_projections() -> list[Projection]:
    return [ContactHistoryProjection()]
