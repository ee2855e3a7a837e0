-- The seed's services, each a view of the same log: the order flow ("orders"),
-- complaints ("complaints"), and account balances, fees and statements
-- ("accounts"). Household value tiers are not stored: they are ranked at query
-- time from these tables and the households view (projections/household_value.py).
-- Times are UTC ISO text; money is integer cents.
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    branch_code TEXT,
    product TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    channel TEXT,
    status TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    placed_position BIGINT NOT NULL,
    decision TEXT,
    reviewer TEXT,
    reviewed_at TEXT,
    updated_position BIGINT NOT NULL
);

CREATE INDEX orders_placed ON orders (placed_position);
CREATE INDEX orders_status ON orders (status, placed_at, placed_position);
CREATE INDEX orders_customer ON orders (customer_id, placed_position);
CREATE INDEX orders_branch ON orders (branch_code, placed_position);

CREATE TABLE order_steps (
    order_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    step TEXT NOT NULL,
    event_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    actor TEXT,
    details TEXT NOT NULL,
    PRIMARY KEY (order_id, position)
);

CREATE TABLE order_customers (
    customer_id TEXT PRIMARY KEY,
    branch_code TEXT NOT NULL,
    region_code TEXT
);

CREATE TABLE complaints (
    complaint_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    officer TEXT,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    filed_at TEXT NOT NULL,
    filed_position BIGINT NOT NULL,
    first_assigned_at TEXT,
    resolved_at TEXT,
    resolution TEXT,
    reopen_count INTEGER NOT NULL DEFAULT 0,
    updated_position BIGINT NOT NULL
);

CREATE INDEX complaints_status ON complaints (status, filed_at, filed_position);
CREATE INDEX complaints_customer ON complaints (customer_id, status);

CREATE TABLE complaint_steps (
    complaint_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    step TEXT NOT NULL,
    event_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    actor TEXT,
    details TEXT NOT NULL,
    PRIMARY KEY (complaint_id, position)
);

CREATE TABLE service_accounts (
    account_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    holder_ids TEXT NOT NULL,
    product TEXT NOT NULL,
    currency TEXT NOT NULL,
    branch_code TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    opened_position BIGINT NOT NULL,
    closed_at TEXT,
    balance_cents BIGINT,
    balance_as_of TEXT,
    balance_position BIGINT
);

CREATE TABLE service_account_holders (
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (customer_id, account_id)
);

CREATE INDEX service_account_holders_account ON service_account_holders (account_id);

CREATE TABLE account_balance_reports (
    account_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    as_of TEXT NOT NULL,
    balance_cents BIGINT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (account_id, position)
);

CREATE INDEX account_balance_reports_as_of ON account_balance_reports (account_id, as_of, position);

CREATE TABLE account_fees (
    account_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (account_id, position)
);

CREATE INDEX account_fees_time ON account_fees (account_id, occurred_at);
CREATE INDEX account_fees_recent ON account_fees (occurred_at);

CREATE TABLE account_statements (
    account_id TEXT NOT NULL,
    period TEXT NOT NULL,
    closing_balance_cents BIGINT NOT NULL,
    fees_total_cents BIGINT,
    position BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (account_id, period)
);

CREATE TABLE account_clock (
    name TEXT PRIMARY KEY,
    latest_occurred_at TEXT NOT NULL
);
