-- Mailing plans ("mailing_decisions" projection): the facts a plan decides on, with
-- the events behind them, and the decisions made. mailing_plan_requests is not a
-- view: it keeps each plan's answer by request_id so a repeated request gets it again.
CREATE TABLE mailing_campaigns (
    campaign_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    purpose TEXT NOT NULL,
    one_per_household INTEGER NOT NULL,
    cap_max INTEGER,
    cap_days INTEGER,
    event_id TEXT NOT NULL,
    position BIGINT NOT NULL
);

CREATE TABLE mailing_people (
    customer_id TEXT PRIMARY KEY,
    moved_position BIGINT NOT NULL,
    deceased_event_id TEXT,
    deceased_position BIGINT,
    merged_into TEXT,
    merged_event_id TEXT,
    merged_position BIGINT
);

CREATE TABLE mailing_consents (
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    purpose TEXT NOT NULL,
    granted INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (customer_id, channel, purpose)
);

CREATE TABLE mailing_pieces (
    mailing_id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    purpose TEXT,
    household_id TEXT,
    scheduled_event_id TEXT,
    scheduled_position BIGINT,
    scheduled_at TEXT,
    sent_event_id TEXT,
    sent_position BIGINT,
    sent_at TEXT,
    returned_count INTEGER NOT NULL DEFAULT 0,
    responded_count INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX mailing_pieces_customer ON mailing_pieces (customer_id);
CREATE INDEX mailing_pieces_campaign ON mailing_pieces (campaign_id);

CREATE TABLE mailing_returns (
    event_id TEXT PRIMARY KEY,
    mailing_id TEXT NOT NULL,
    position BIGINT NOT NULL
);

CREATE INDEX mailing_returns_mailing ON mailing_returns (mailing_id);

CREATE TABLE mailing_decisions (
    campaign_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    household_id TEXT,
    mailing_id TEXT,
    address TEXT,
    caused_by TEXT NOT NULL,
    request_id TEXT,
    decided_at TEXT NOT NULL,
    event_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, customer_id)
);

CREATE INDEX mailing_decisions_household ON mailing_decisions (campaign_id, household_id);

CREATE TABLE mailing_plan_requests (
    request_id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
);
