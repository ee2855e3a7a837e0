-- The log is append-only: UPDATE, DELETE and TRUNCATE on the stored events and on
-- their index/hash chain are refused. Someone with superuser access can still
-- disable these triggers; the hash chain and signed checkpoints catch that.
CREATE FUNCTION crm_refuse_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER crm_events_append_only
    BEFORE UPDATE OR DELETE ON crm_events
    FOR EACH ROW EXECUTE FUNCTION crm_refuse_log_change();

CREATE TRIGGER crm_events_no_truncate
    BEFORE TRUNCATE ON crm_events
    FOR EACH STATEMENT EXECUTE FUNCTION crm_refuse_log_change();

CREATE TRIGGER crm_event_log_append_only
    BEFORE UPDATE OR DELETE ON crm_event_log
    FOR EACH ROW EXECUTE FUNCTION crm_refuse_log_change();

CREATE TRIGGER crm_event_log_no_truncate
    BEFORE TRUNCATE ON crm_event_log
    FOR EACH STATEMENT EXECUTE FUNCTION crm_refuse_log_change();
