"""SQL of household value (projections/household_value.py).

Members come from the households view (current membership); accounts, balances,
fees and opening dates from the accounts view. An account held jointly by two
members of one household is counted once for that household (DISTINCT pairs).
"""

HOUSEHOLD_VALUES = """
WITH holdings AS (
    SELECT DISTINCT p.household_id, h.account_id
    FROM service_account_holders h
    JOIN household_people p ON p.customer_id = h.customer_id
    WHERE p.household_id IS NOT NULL
),
recent_fees AS (
    SELECT account_id, SUM(amount_cents) AS fee_cents
    FROM account_fees
    WHERE occurred_at > %s AND occurred_at <= %s
    GROUP BY account_id
),
valued AS (
    SELECT hh.household_id, hh.branch_code, hh.region_code, hh.member_count,
        COALESCE(SUM(CASE WHEN a.status = 'open' THEN a.balance_cents END), 0)
            AS total_balance_cents,
        COALESCE(SUM(f.fee_cents), 0) AS fee_income_cents,
        COUNT(DISTINCT CASE WHEN a.status = 'open' THEN a.product END)
            AS product_count,
        COUNT(CASE WHEN a.status = 'open' THEN 1 END) AS account_count,
        MIN(a.opened_at) AS first_opened_at
    FROM households hh
    LEFT JOIN holdings ho ON ho.household_id = hh.household_id
    LEFT JOIN service_accounts a ON a.account_id = ho.account_id
    LEFT JOIN recent_fees f ON f.account_id = a.account_id
    WHERE hh.member_count > 0
    GROUP BY hh.household_id, hh.branch_code, hh.region_code, hh.member_count
),
ranked AS (
    SELECT valued.*,
        ROW_NUMBER() OVER (
            ORDER BY total_balance_cents DESC, fee_income_cents DESC, household_id
        ) AS value_rank,
        COUNT(*) OVER () AS household_count
    FROM valued
)
SELECT {columns} FROM ranked WHERE {where} ORDER BY value_rank {limit}
"""
