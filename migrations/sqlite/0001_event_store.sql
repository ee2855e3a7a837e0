-- The event store, exactly as eventsourcing 9.5 expects it on SQLite,
-- plus the event log index (idempotency by event_id, and the hash chain).
CREATE TABLE stored_events (
    originator_id TEXT,
    originator_version INTEGER,
    topic TEXT,
    state BLOB,
    PRIMARY KEY (originator_id, originator_version)
);

CREATE TABLE crm_event_log (
    position INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    content_hash BLOB NOT NULL,
    chain_hash BLOB NOT NULL
);

CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    key_prefix TEXT NOT NULL,
    role TEXT NOT NULL,
    customer_id TEXT,
    label TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    revoked_at TEXT
);

CREATE TABLE projection_positions (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
