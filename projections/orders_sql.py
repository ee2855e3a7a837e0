"""SQL of the order-flow view (projections/orders.py)."""

from projections.batch import Bulk

# One statement per page's run of registrations, not one per row.
UPSERT_CUSTOMER = Bulk.insert(
    "order_customers",
    (("customer_id", "text"), ("branch_code", "text"), ("region_code", "text")),
    "ON CONFLICT (customer_id) DO UPDATE SET "
    "branch_code = excluded.branch_code, region_code = excluded.region_code",
    key=(0,),
)

BRANCHES_IN = (
    "SELECT customer_id, branch_code FROM order_customers WHERE customer_id IN {ids}"
)

INSERT_ORDER = (
    "INSERT INTO orders (order_id, customer_id, branch_code, product, amount_cents, "
    "currency, channel, status, placed_at, placed_position, updated_position) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, 'placed', %s, %s, %s)"
)

REVIEW_ORDER = (
    "UPDATE orders SET status = %s, decision = %s, reviewer = %s, reviewed_at = %s, "
    "updated_position = %s WHERE order_id = %s"
)

SET_STATUS = "UPDATE orders SET status = %s, updated_position = %s WHERE order_id = %s"

INSERT_STEP = Bulk.insert(
    "order_steps",
    (
        ("order_id", "text"),
        ("position", "bigint"),
        ("step", "text"),
        ("event_id", "text"),
        ("occurred_at", "text"),
        ("recorded_at", "text"),
        ("actor", "text"),
        ("details", "text"),
    ),
)

SELECT_ORDER = "SELECT * FROM orders WHERE order_id = %s"

SELECT_STEPS = (
    "SELECT step, position, event_id, occurred_at, recorded_at, actor, details "
    "FROM order_steps WHERE order_id = %s ORDER BY position"
)

REVIEW_QUEUE = (
    "SELECT * FROM orders WHERE status = 'placed' "
    "ORDER BY placed_at, placed_position LIMIT %s"
)

HOUSEHOLD_AT = (
    "SELECT household_id FROM household_memberships WHERE customer_id = %s "
    "AND from_position <= %s AND (to_position IS NULL OR to_position > %s) "
    "ORDER BY from_position DESC LIMIT 1"
)
