-- Customer directory ("customers" projection) and household resolution
-- ("households" projection). Each projection owns its tables, so either can be
-- rebuilt alone: the household projection keeps its own copy of the few
-- customer and account facts it needs (household_people, household_accounts).
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    address_key TEXT NOT NULL,
    national_id_hash TEXT,
    national_id_last4 TEXT,
    birth_date TEXT,
    gender TEXT,
    phone TEXT,
    phone_digits TEXT,
    email TEXT,
    branch_code TEXT NOT NULL,
    region_code TEXT,
    handling_officer TEXT,
    consents TEXT NOT NULL DEFAULT '{}',
    deceased INTEGER NOT NULL DEFAULT 0,
    date_of_death TEXT,
    merged_into TEXT,
    registered_at TEXT NOT NULL,
    registered_position INTEGER NOT NULL,
    total_balance_cents INTEGER NOT NULL DEFAULT 0,
    position INTEGER NOT NULL
);

CREATE INDEX customers_name ON customers (name);
CREATE INDEX customers_phone_digits ON customers (phone_digits);
CREATE INDEX customers_national_id_hash ON customers (national_id_hash);
CREATE INDEX customers_address_key ON customers (address_key);

CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    joint_holder_ids TEXT NOT NULL DEFAULT '[]',
    product TEXT NOT NULL,
    currency TEXT NOT NULL,
    branch_code TEXT NOT NULL,
    status TEXT NOT NULL,
    balance_cents INTEGER,
    balance_as_of TEXT,
    balance_position INTEGER,
    position INTEGER NOT NULL
);

CREATE TABLE account_holders (
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (customer_id, account_id)
);

CREATE INDEX account_holders_account ON account_holders (account_id);

CREATE TABLE household_people (
    customer_id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    address_key TEXT NOT NULL,
    national_id_hash TEXT,
    branch_code TEXT NOT NULL,
    region_code TEXT,
    deceased INTEGER NOT NULL DEFAULT 0,
    merged_into TEXT,
    registered_position INTEGER NOT NULL,
    head_designated_position INTEGER,
    balance_cents INTEGER NOT NULL DEFAULT 0,
    household_id TEXT
);

CREATE INDEX household_people_address_key ON household_people (address_key);
CREATE INDEX household_people_national_id_hash ON household_people (national_id_hash);
CREATE INDEX household_people_merged_into ON household_people (merged_into);
CREATE INDEX household_people_household ON household_people (household_id);

CREATE TABLE household_relations (
    customer_id TEXT NOT NULL,
    related_customer_id TEXT NOT NULL,
    same_household INTEGER NOT NULL,
    relation TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (customer_id, related_customer_id)
);

CREATE INDEX household_relations_related ON household_relations (related_customer_id);

CREATE TABLE household_accounts (
    account_id TEXT PRIMARY KEY,
    holder_ids TEXT NOT NULL,
    is_open INTEGER NOT NULL,
    balance_cents INTEGER,
    balance_as_of TEXT,
    balance_position INTEGER
);

CREATE TABLE household_account_holders (
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (customer_id, account_id)
);

CREATE INDEX household_account_holders_account ON household_account_holders (account_id);

CREATE TABLE households (
    household_id TEXT PRIMARY KEY,
    created_position INTEGER NOT NULL,
    address TEXT,
    address_key TEXT,
    head_customer_id TEXT,
    primary_recipient_id TEXT,
    member_count INTEGER NOT NULL,
    branch_code TEXT,
    region_code TEXT,
    mailable INTEGER NOT NULL,
    not_mailable_reason TEXT,
    position INTEGER NOT NULL
);

CREATE INDEX households_branch ON households (branch_code, household_id);
CREATE INDEX households_region ON households (region_code, household_id);

CREATE TABLE household_memberships (
    household_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    from_position INTEGER NOT NULL,
    to_position INTEGER,
    since TEXT NOT NULL,
    until TEXT,
    occurred_since TEXT NOT NULL,
    occurred_until TEXT,
    joined_by_event_id TEXT NOT NULL,
    joined_by_type TEXT NOT NULL,
    left_by_event_id TEXT,
    left_by_type TEXT,
    reason TEXT NOT NULL,
    left_reason TEXT,
    PRIMARY KEY (household_id, customer_id, from_position)
);

CREATE INDEX household_memberships_customer ON household_memberships (customer_id, from_position);
