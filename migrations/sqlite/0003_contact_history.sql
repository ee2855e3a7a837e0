-- Contact history: one row per (customer, touchpoint), plus the lookups that
-- attribute events naming only an order, complaint, account or mailing.
CREATE TABLE contact_history (
    customer_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    occurred_at_utc TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    source TEXT NOT NULL,
    actor TEXT,
    channel TEXT,
    summary TEXT NOT NULL,
    PRIMARY KEY (customer_id, position)
);

CREATE INDEX contact_history_position ON contact_history (position);

CREATE TABLE contact_history_customers (
    customer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE contact_history_orders (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    product TEXT NOT NULL
);

CREATE TABLE contact_history_complaints (
    complaint_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    category TEXT NOT NULL
);

CREATE TABLE contact_history_accounts (
    account_id TEXT PRIMARY KEY,
    product TEXT NOT NULL,
    currency TEXT NOT NULL
);

CREATE TABLE contact_history_account_holders (
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (account_id, customer_id)
);

CREATE TABLE contact_history_campaigns (
    campaign_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    channel TEXT NOT NULL
);

CREATE TABLE contact_history_mailings (
    mailing_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL
);

CREATE TABLE contact_history_merges (
    duplicate_id TEXT PRIMARY KEY,
    survivor_id TEXT NOT NULL,
    position INTEGER NOT NULL
);

CREATE INDEX contact_history_merges_survivor ON contact_history_merges (survivor_id);
