"""SQL of the complaints view (projections/complaints.py)."""

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

INSERT_STEP = (
    "INSERT INTO complaint_steps (complaint_id, position, step, event_id, "
    "occurred_at, recorded_at, actor, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)

SELECT_COMPLAINT = "SELECT * FROM complaints WHERE complaint_id = %s"

SELECT_STEPS = (
    "SELECT step, position, event_id, occurred_at, recorded_at, actor, details "
    "FROM complaint_steps WHERE complaint_id = %s ORDER BY position"
)
