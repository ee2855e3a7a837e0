-- The log is append-only: UPDATE and DELETE on the stored events and on their
-- index/hash chain are refused. Anyone who can write the file can drop these
-- triggers; the hash chain and signed checkpoints catch that.
CREATE TRIGGER stored_events_no_update BEFORE UPDATE ON stored_events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: UPDATE on stored_events is refused');
END;

CREATE TRIGGER stored_events_no_delete BEFORE DELETE ON stored_events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: DELETE on stored_events is refused');
END;

CREATE TRIGGER crm_event_log_no_update BEFORE UPDATE ON crm_event_log
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: UPDATE on crm_event_log is refused');
END;

CREATE TRIGGER crm_event_log_no_delete BEFORE DELETE ON crm_event_log
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: DELETE on crm_event_log is refused');
END;
