"""Complaints: lifecycle, current officer, escalation level and SLA.

The SLA is judged at read time against the request's clock: a complaint must be
assigned within `assign_hours` of filing and resolved within `resolve_hours` of
filing (a reopened complaint keeps its original filing time). Hours can be set
per category (`CRM_SLA_CATEGORIES='{"理财产品": {"assign_hours": 24}}'`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.store.database import Cursor
from projections import complaints_sql as sql
from projections.batch import Statements, Writes
from projections.records import EventRecord
from projections.service_values import dumps, loads, utc_text

_STEP_OF = {
    "ComplaintFiled": "filed",
    "ComplaintAssigned": "assigned",
    "ComplaintEscalated": "escalated",
    "ComplaintResolved": "resolved",
    "ComplaintReopened": "reopened",
}


class CategorySla(BaseModel):
    assign_hours: float | None = Field(default=None, gt=0)
    resolve_hours: float | None = Field(default=None, gt=0)


class ComplaintSlaSettings(BaseSettings):
    """Complaint service levels (environment prefix CRM_SLA_)."""

    model_config = SettingsConfigDict(env_prefix="CRM_SLA_", frozen=True)

    assign_hours: float = Field(
        default=48.0, gt=0, description="Hours from filing to first assignment"
    )
    resolve_hours: float = Field(
        default=15 * 24.0, gt=0, description="Hours from filing to resolution"
    )
    categories: dict[str, CategorySla] = Field(
        default_factory=dict,
        description='Per-category overrides, JSON: {"category": {"assign_hours": 24}}',
    )

    def hours_for(self, category: str) -> tuple[float, float]:
        override = self.categories.get(category, CategorySla())
        return (
            override.assign_hours or self.assign_hours,
            override.resolve_hours or self.resolve_hours,
        )


class ComplaintsProjection:
    name = "complaints"
    tables: tuple[str, ...] = ("complaints", "complaint_steps")

    def __init__(self) -> None:
        self._out = Statements()  # sent in log order at the end of each page
        self._steps = Writes()  # inserted only, and read by no statement of a page

    def apply(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._out.clear()
        self._steps.clear()
        for record in records:
            if record.type in _STEP_OF:
                self._step(self._out, self._steps, record, record.data)
        self._out.flush(cur)
        self._steps.flush(cur)

    @staticmethod
    def _step(
        out: Statements, steps: Writes, record: EventRecord, data: dict[str, Any]
    ) -> None:
        complaint_id = data["complaint_id"]
        at = utc_text(record.occurred_at)
        if record.type == "ComplaintFiled":
            out.add(
                sql.INSERT_COMPLAINT,
                (
                    complaint_id,
                    data["customer_id"],
                    data["channel"],
                    data["category"],
                    data["description"],
                    at,
                    record.position,
                    record.position,
                ),
            )
        elif record.type == "ComplaintAssigned":
            out.add(sql.ASSIGN, (data["officer"], at, record.position, complaint_id))
        elif record.type == "ComplaintEscalated":
            out.add(sql.ESCALATE, (data["level"], record.position, complaint_id))
        elif record.type == "ComplaintResolved":
            out.add(
                sql.RESOLVE, (at, data["resolution"], record.position, complaint_id)
            )
        else:
            out.add(sql.REOPEN, (record.position, complaint_id))
        details = {k: v for k, v in data.items() if k != "complaint_id"}
        steps.add(
            sql.INSERT_STEP,
            (
                complaint_id,
                record.position,
                _STEP_OF[record.type],
                record.event_id,
                at,
                record.recorded_at,
                record.actor,
                dumps(details),
            ),
        )


# reads ---------------------------------------------------------------------------


def sla_of(
    row: dict[str, Any], now: datetime, settings: ComplaintSlaSettings
) -> dict[str, Any]:
    """Due times and breaches of one complaint row, judged at `now`."""
    assign_hours, resolve_hours = settings.hours_for(row["category"])
    filed = datetime.fromisoformat(row["filed_at"])
    assign_due = filed + timedelta(hours=assign_hours)
    resolve_due = filed + timedelta(hours=resolve_hours)
    assigned = row["first_assigned_at"]
    resolved = row["resolved_at"]
    assign_at = datetime.fromisoformat(assigned) if assigned else now
    resolve_at = datetime.fromisoformat(resolved) if resolved else now
    assign_breached = assign_at > assign_due
    resolve_breached = resolve_at > resolve_due
    return {
        "assign_due_at": assign_due.isoformat(),
        "resolve_due_at": resolve_due.isoformat(),
        "assign_breached": assign_breached,
        "resolve_breached": resolve_breached,
        "breached": assign_breached or resolve_breached,
    }


def _public(
    row: dict[str, Any], now: datetime, settings: ComplaintSlaSettings
) -> dict[str, Any]:
    complaint = {
        key: row[key]
        for key in (
            "complaint_id",
            "customer_id",
            "channel",
            "category",
            "description",
            "status",
            "officer",
            "filed_at",
            "first_assigned_at",
            "resolved_at",
            "resolution",
        )
    }
    complaint["escalation_level"] = int(row["escalation_level"])
    complaint["reopen_count"] = int(row["reopen_count"])
    complaint["position"] = int(row["updated_position"])
    complaint["age_hours"] = round(
        (now - datetime.fromisoformat(row["filed_at"])).total_seconds() / 3600, 2
    )
    complaint["sla"] = sla_of(row, now, settings)
    return complaint


def get_complaint(
    cur: Cursor,
    complaint_id: str,
    *,
    now: datetime | None = None,
    settings: ComplaintSlaSettings | None = None,
) -> dict[str, Any] | None:
    """One complaint with its SLA and timeline, or None."""
    row = cur.execute(sql.SELECT_COMPLAINT, (complaint_id,)).fetchone()
    if row is None:
        return None
    complaint = _public(
        row, now or datetime.now(UTC), settings or ComplaintSlaSettings()
    )
    complaint["timeline"] = [
        {**{k: v for k, v in step.items() if k != "details"}, **loads(step["details"])}
        | {"position": int(step["position"])}
        for step in cur.execute(sql.SELECT_STEPS, (complaint_id,)).fetchall()
    ]
    return complaint


def owner_of(cur: Cursor, complaint_id: str) -> str | None:
    row = cur.execute(
        "SELECT customer_id FROM complaints WHERE complaint_id = %s", (complaint_id,)
    ).fetchone()
    return None if row is None else row["customer_id"]


def list_complaints(
    cur: Cursor,
    *,
    status: str | None = None,
    officer: str | None = None,
    category: str | None = None,
    customer_id: str | None = None,
    now: datetime | None = None,
    settings: ComplaintSlaSettings | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Complaints oldest first (by filing time), each with its SLA flag."""
    conditions: list[str] = ["1 = 1"]
    params: list[Any] = []
    for column, value in (
        ("status", status),
        ("officer", officer),
        ("category", category),
        ("customer_id", customer_id),
    ):
        if value is not None:
            conditions.append(f"{column} = %s")
            params.append(value)
    rows = cur.execute(
        f"SELECT * FROM complaints WHERE {' AND '.join(conditions)} "
        "ORDER BY filed_at, filed_position LIMIT %s",
        (*params, max(1, min(limit, 500))),
    ).fetchall()
    moment = now or datetime.now(UTC)
    chosen = settings or ComplaintSlaSettings()
    return [_public(row, moment, chosen) for row in rows]


def open_complaints(cur: Cursor, customer_ids: Sequence[str]) -> dict[str, int]:
    """Open complaints per customer (0 for those with none)."""
    counts = dict.fromkeys(customer_ids, 0)
    if not customer_ids:
        return counts
    placeholders = ",".join(["%s"] * len(customer_ids))
    rows = cur.execute(
        "SELECT customer_id, COUNT(*) AS n FROM complaints "
        f"WHERE status = 'open' AND customer_id IN ({placeholders}) "
        "GROUP BY customer_id",
        list(customer_ids),
    ).fetchall()
    for row in rows:
        counts[row["customer_id"]] = int(row["n"])
    return counts


def open_complaints_of_household(cur: Cursor, household_id: str) -> int:
    """Open complaints of the household's current members."""
    row = cur.execute(
        "SELECT COUNT(*) AS n FROM complaints c JOIN household_people p "
        "ON p.customer_id = c.customer_id "
        "WHERE p.household_id = %s AND c.status = 'open'",
        (household_id,),
    ).fetchone()
    return 0 if row is None else int(row["n"])
