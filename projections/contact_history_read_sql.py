"""SQL of a customer's contact-history page (`contact_history_queries`).

One statement answers the page and whether the customer is in the customers
view (`customer_known`, on every row; a single row of NULLs beside it when the
page is empty). Rows of the customer and of every record merged into it are
read; several rows can share a position (a merge names both records), and the
one of the least merged record is kept, so the position alone is a valid keyset
cursor.

On PostgreSQL each merged record's rows are read newest first through the
primary key, at most one page of them (LATERAL): planned as a join of the
recursive CTE, they would be read by scanning the whole table. SQLite has no
LATERAL and plans the join through the primary key.
"""

from __future__ import annotations

from projections.contact_history_sql import COLUMNS

_TEMPLATE = """
WITH RECURSIVE merged (customer_id, depth) AS (
    SELECT CAST(%s AS TEXT), 0
    UNION ALL
    SELECT m.duplicate_id, merged.depth + 1
    FROM contact_history_merges m JOIN merged ON m.survivor_id = merged.customer_id
),
candidates AS (
    SELECT h.*, ROW_NUMBER() OVER (
        PARTITION BY h.position ORDER BY merged.depth, h.customer_id
    ) AS pick
    {source}
),
page AS (
    SELECT {columns} FROM candidates WHERE pick = 1 ORDER BY position DESC LIMIT %s
)
SELECT known.customer_known, page.*
FROM (
    SELECT COUNT(*) AS customer_known FROM customers WHERE customer_id = %s
) known
LEFT JOIN page ON 1 = 1
ORDER BY page.position DESC
"""

_POSTGRESQL_SOURCE = """FROM merged CROSS JOIN LATERAL (
        SELECT * FROM contact_history h
        WHERE h.customer_id = merged.customer_id AND {filters}
        ORDER BY h.position DESC
        LIMIT %s
    ) h"""

_SQLITE_SOURCE = """FROM contact_history h JOIN merged ON h.customer_id = merged.customer_id
    WHERE {filters}"""

# By whether the backend is SQLite; `{filters}` is left for the caller.
CUSTOMER_HISTORY = {
    sqlite: _TEMPLATE.replace(
        "{source}", _SQLITE_SOURCE if sqlite else _POSTGRESQL_SOURCE
    ).replace("{columns}", COLUMNS)
    for sqlite in (False, True)
}
