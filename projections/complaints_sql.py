"""SQL of the complaints view (projections/complaints.py)."""

from projections.batch import Bulk

INSERT_COMPLAINT = (
    "INSERT INTO complaints (complaint_id, customer_id, channel, category, "
    "description, status, filed_at, filed_position, updated_position) "
    "VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, %s)"
)

ASSIGN = (
    "UPDATE complaints SET officer = %s, "
    "first_assigned_at = COALESCE(first_assigned_at, %s), updated_position = %s "
    "WHERE complaint_id = %s"
)

ESCALATE = (
    "UPDATE complaints SET escalation_level = %s, updated_position = %s "
    "WHERE complaint_id = %s"
)

RESOLVE = (
    "UPDATE complaints SET status = 'resolved', resolved_at = %s, resolution = %s, "
    "updated_position = %s WHERE complaint_id = %s"
)

REOPEN = (
    "UPDATE complaints SET status = 'open', resolved_at = NULL, resolution = NULL, "
    "reopen_count = reopen_count + 1, updated_position = %s WHERE complaint_id = %s"
)

INSERT_STEP = Bulk.insert(
    "complaint_steps",
    (
        ("complaint_id", "text"),
        ("position", "bigint"),
        ("step", "text"),
        ("event_id", "text"),
        ("occurred_at", "text"),
        ("recorded_at", "text"),
        ("actor", "text"),
        ("details", "text"),
    ),
)

SELECT_COMPLAINT = "SELECT * FROM complaints WHERE complaint_id = %s"

SELECT_STEPS = (
    "SELECT step, position, event_id, occurred_at, recorded_at, actor, details "
    "FROM complaint_steps WHERE complaint_id = %s ORDER BY position"
)
