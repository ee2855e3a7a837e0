-- The event store, exactly as eventsourcing 9.5 (application name "crm") expects it,
-- plus the event log index (idempotency by event_id, and the hash chain).
CREATE TYPE stored_event_uuid AS (
    originator_id uuid,
    originator_version bigint,
    topic text,
    state bytea
);

CREATE TABLE crm_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);

CREATE UNIQUE INDEX crm_events_notification_id_idx ON crm_events (notification_id ASC);

CREATE TABLE crm_event_log (
    position bigint PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    content_hash bytea NOT NULL,
    chain_hash bytea NOT NULL
);

CREATE TABLE api_keys (
    key_hash text PRIMARY KEY,
    key_prefix text NOT NULL,
    role text NOT NULL,
    customer_id text,
    label text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE projection_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
