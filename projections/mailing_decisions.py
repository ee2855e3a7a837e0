"""Mailing decisions: the facts a plan decides on (with the events behind them),
the decisions made per campaign and customer, and the per-campaign report.

Tables in migrations/*/0004_mailings.sql. Which household a piece belonged to is
worked out at read time from `household_memberships` (by log position), so this
view never depends on how far the households view has got.
"""

from __future__ import annotations

from typing import Any

import orjson

from api.store.database import Cursor
from projections.base import DispatchesByType
from projections.batch import Bulk, Statements, Writes
from projections.records import EventRecord
from projections.service_values import utc_text

INSERT_CAMPAIGN = """
INSERT INTO mailing_campaigns (campaign_id, name, channel, purpose, one_per_household,
    cap_max, cap_days, event_id, position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (campaign_id) DO NOTHING
"""
INSERT_PERSON = Bulk.insert(
    "mailing_people",
    (("customer_id", "text"), ("moved_position", "bigint")),
    "ON CONFLICT (customer_id) DO NOTHING",
)
UPDATE_MOVED = "UPDATE mailing_people SET moved_position = %s WHERE customer_id = %s"
UPDATE_DECEASED = """
UPDATE mailing_people SET deceased_event_id = %s, deceased_position = %s
WHERE customer_id = %s
"""
UPDATE_MERGED = """
UPDATE mailing_people SET merged_into = %s, merged_event_id = %s, merged_position = %s
WHERE customer_id = %s
"""
UPSERT_CONSENT = """
INSERT INTO mailing_consents (customer_id, channel, purpose, granted, event_id, position)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (customer_id, channel, purpose) DO UPDATE SET granted = excluded.granted,
    event_id = excluded.event_id, position = excluded.position
"""
UPSERT_SCHEDULED = Bulk(
    one="""
INSERT INTO mailing_pieces (mailing_id, campaign_id, customer_id, purpose, household_id,
    scheduled_event_id, scheduled_position, scheduled_at)
VALUES (%s, %s, %s, (SELECT purpose FROM mailing_campaigns WHERE campaign_id = %s), %s, %s, %s, %s)
ON CONFLICT (mailing_id) DO UPDATE SET household_id = excluded.household_id,
    scheduled_event_id = excluded.scheduled_event_id,
    scheduled_position = excluded.scheduled_position, scheduled_at = excluded.scheduled_at
""",
    many="""
INSERT INTO mailing_pieces (mailing_id, campaign_id, customer_id, purpose, household_id,
    scheduled_event_id, scheduled_position, scheduled_at)
SELECT v.mailing_id, v.campaign_id, v.customer_id,
    (SELECT purpose FROM mailing_campaigns c WHERE c.campaign_id = v.purpose_of),
    v.household_id, v.scheduled_event_id, v.scheduled_position, v.scheduled_at
FROM {rows}
ON CONFLICT (mailing_id) DO UPDATE SET household_id = excluded.household_id,
    scheduled_event_id = excluded.scheduled_event_id,
    scheduled_position = excluded.scheduled_position, scheduled_at = excluded.scheduled_at
""",
    columns=(
        ("mailing_id", "text"),
        ("campaign_id", "text"),
        ("customer_id", "text"),
        ("purpose_of", "text"),
        ("household_id", "text"),
        ("scheduled_event_id", "text"),
        ("scheduled_position", "bigint"),
        ("scheduled_at", "text"),
    ),
    key=(0,),
)
UPSERT_SENT = """
INSERT INTO mailing_pieces (mailing_id, campaign_id, customer_id, purpose,
    sent_event_id, sent_position, sent_at)
VALUES (%s, %s, %s, (SELECT purpose FROM mailing_campaigns WHERE campaign_id = %s), %s, %s, %s)
ON CONFLICT (mailing_id) DO UPDATE SET sent_event_id = excluded.sent_event_id,
    sent_position = excluded.sent_position, sent_at = excluded.sent_at
"""
INSERT_RETURN = """
INSERT INTO mailing_returns (event_id, mailing_id, position) VALUES (%s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""
COUNT_RETURN = "UPDATE mailing_pieces SET returned_count = returned_count + 1 WHERE mailing_id = %s"
COUNT_RESPONSE = "UPDATE mailing_pieces SET responded_count = responded_count + 1 WHERE mailing_id = %s"
# First decision wins (a later one for the same target is ignored, as in the store).
UPSERT_DECISION = Bulk.insert(
    "mailing_decisions",
    (
        ("campaign_id", "text"),
        ("customer_id", "text"),
        ("outcome", "text"),
        ("reason", "text"),
        ("household_id", "text"),
        ("mailing_id", "text"),
        ("address", "text"),
        ("caused_by", "text"),
        ("request_id", "text"),
        ("decided_at", "text"),
        ("event_id", "text"),
        ("position", "bigint"),
    ),
    "ON CONFLICT (campaign_id, customer_id) DO NOTHING",
)
SELECT_DECISION = (
    "SELECT * FROM mailing_decisions WHERE campaign_id = %s AND customer_id = %s"
)
SELECT_CAMPAIGN = "SELECT * FROM mailing_campaigns WHERE campaign_id = %s"
SELECT_REASON_COUNTS = """
SELECT outcome, reason, COUNT(*) AS n FROM mailing_decisions WHERE campaign_id = %s
GROUP BY outcome, reason ORDER BY outcome, reason
"""
SELECT_CAMPAIGN_PIECES = """
SELECT p.*, (SELECT m.household_id FROM household_memberships m
             WHERE m.customer_id = p.customer_id
               AND m.from_position <= COALESCE(p.scheduled_position, p.sent_position)
               AND (m.to_position IS NULL
                    OR m.to_position > COALESCE(p.scheduled_position, p.sent_position))
             ORDER BY m.from_position DESC LIMIT 1) AS household_then
FROM mailing_pieces p WHERE p.campaign_id = %s
ORDER BY COALESCE(p.scheduled_position, p.sent_position), p.mailing_id
"""


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class MailingDecisionsProjection(DispatchesByType):
    name = "mailing_decisions"
    tables: tuple[str, ...] = (
        "mailing_campaigns",
        "mailing_people",
        "mailing_consents",
        "mailing_pieces",
        "mailing_returns",
        "mailing_decisions",
    )

    def __init__(self) -> None:
        self._out = Statements()  # sent in log order at the end of each page
        # Only decisions write mailing_decisions: they go together after the rest.
        self._decisions = Writes()

    def apply(self, cur: Cursor, records: list[EventRecord]) -> None:
        self._out.clear()
        self._decisions.clear()
        for record in records:
            handler = getattr(self, f"_on_{record.type}", None)
            if handler is not None:
                handler(self._out, record, record.data)
        self._out.flush(cur)
        self._decisions.flush(cur)

    def _on_CampaignLaunched(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        cap = data.get("frequency_cap") or {}
        out.add(
            INSERT_CAMPAIGN,
            (
                data["campaign_id"],
                data["name"],
                data["channel"],
                data["purpose"],
                1 if data.get("one_per_household", True) else 0,
                cap.get("max"),
                cap.get("days"),
                record.event_id,
                record.position,
            ),
        )

    def _on_CustomerRegistered(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        out.add(INSERT_PERSON, (data["customer_id"], record.position))

    def _on_CustomerMoved(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        out.add(UPDATE_MOVED, (record.position, data["customer_id"]))

    def _on_CustomerDeceased(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        out.add(
            UPDATE_DECEASED, (record.event_id, record.position, data["customer_id"])
        )

    def _on_CustomersMerged(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        out.add(
            UPDATE_MERGED,
            (
                data["survivor_id"],
                record.event_id,
                record.position,
                data["duplicate_id"],
            ),
        )

    def _on_ConsentChanged(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        out.add(
            UPSERT_CONSENT,
            (
                data["customer_id"],
                data["channel"],
                data["purpose"],
                1 if data["granted"] else 0,
                record.event_id,
                record.position,
            ),
        )

    def _on_MailingScheduled(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        out.add(
            UPSERT_SCHEDULED,
            (
                data["mailing_id"],
                data["campaign_id"],
                data["customer_id"],
                data["campaign_id"],
                data.get("household_id"),
                record.event_id,
                record.position,
                utc_text(record.occurred_at),
            ),
        )
        self._decided(record, data, "scheduled")

    def _on_MailingSuppressed(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        self._decided(record, data, "suppressed")

    def _decided(self, record: EventRecord, data: dict[str, Any], outcome: str) -> None:
        address = data.get("address")
        self._decisions.add(
            UPSERT_DECISION,
            (
                data["campaign_id"],
                data["customer_id"],
                outcome,
                data["reason"],
                data.get("household_id"),
                data.get("mailing_id"),
                None if address is None else _dumps(address),
                _dumps(data.get("caused_by", [])),
                data.get("request_id"),
                utc_text(record.occurred_at),
                record.event_id,
                record.position,
            ),
        )

    def _on_MailingSent(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        out.add(
            UPSERT_SENT,
            (
                data["mailing_id"],
                data["campaign_id"],
                data["customer_id"],
                data["campaign_id"],
                record.event_id,
                record.position,
                utc_text(record.occurred_at),
            ),
        )

    def _on_MailingReturned(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        out.add(INSERT_RETURN, (record.event_id, data["mailing_id"], record.position))
        out.add(COUNT_RETURN, (data["mailing_id"],))

    def _on_MailingResponded(
        self, out: Statements, record: EventRecord, data: dict[str, Any]
    ) -> None:
        out.add(COUNT_RESPONSE, (data["mailing_id"],))


# queries ---------------------------------------------------------------------


def decision_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "campaign_id": row["campaign_id"],
        "customer_id": row["customer_id"],
        "outcome": row["outcome"],
        "reason": row["reason"],
        "household_id": row["household_id"],
        "mailing_id": row["mailing_id"],
        "address": None if row["address"] is None else orjson.loads(row["address"]),
        "caused_by": orjson.loads(row["caused_by"]),
        "request_id": row["request_id"],
        "decided_at": row["decided_at"],
        "event_id": row["event_id"],
        "position": row["position"],
    }


def get_campaign(cur: Cursor, campaign_id: str) -> dict[str, Any] | None:
    return cur.execute(SELECT_CAMPAIGN, (campaign_id,)).fetchone()


def get_decision(
    cur: Cursor, campaign_id: str, customer_id: str
) -> dict[str, Any] | None:
    """Why (or why not) a customer got a campaign: the decision and its causes."""
    row = cur.execute(SELECT_DECISION, (campaign_id, customer_id)).fetchone()
    return None if row is None else decision_row(row)


def campaign_report(cur: Cursor, campaign_id: str) -> dict[str, Any]:
    """Counts by reason, pieces scheduled/sent/returned/responded, and violations:
    a MailingSent for a household that already had another piece of the campaign."""
    by_reason: dict[str, int] = {}
    decisions = {"scheduled": 0, "suppressed": 0}
    for row in cur.execute(SELECT_REASON_COUNTS, (campaign_id,)).fetchall():
        decisions[row["outcome"]] += int(row["n"])
        if row["outcome"] == "suppressed":
            by_reason[row["reason"]] = int(row["n"])
    pieces = cur.execute(SELECT_CAMPAIGN_PIECES, (campaign_id,)).fetchall()
    campaign = get_campaign(cur, campaign_id)
    per_household = campaign is None or bool(campaign["one_per_household"])
    first_piece: dict[str, dict[str, Any]] = {}
    violations = []
    for piece in pieces:
        household = piece["household_id"] or piece["household_then"]
        if household is None or not per_household:
            continue
        earlier = first_piece.setdefault(household, piece)
        if earlier is not piece and piece["sent_event_id"] is not None:
            violations.append(
                {
                    "household_id": household,
                    "mailing_id": piece["mailing_id"],
                    "customer_id": piece["customer_id"],
                    "event_id": piece["sent_event_id"],
                    "position": piece["sent_position"],
                    "earlier_mailing_id": earlier["mailing_id"],
                    "earlier_customer_id": earlier["customer_id"],
                }
            )
    return {
        "campaign_id": campaign_id,
        "decisions": decisions,
        "suppressed_by_reason": by_reason,
        "pieces": {
            "scheduled": sum(1 for p in pieces if p["scheduled_event_id"]),
            "sent": sum(1 for p in pieces if p["sent_event_id"]),
            "returned": sum(1 for p in pieces if p["returned_count"]),
            "responded": sum(1 for p in pieces if p["responded_count"]),
        },
        "violations": violations,
    }
