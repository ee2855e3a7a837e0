-- Each aggregate's facts that change its state, indexed apart from the facts that
-- change nothing but its version (balances, fees, statements: nine in ten). The
-- writer loads an account from these rows and its last row only, instead of
-- visiting every balance it ever had (api/store/streams.py). The list is
-- domain.events.version_only_topics() when this was written; a test keeps the
-- two equal, so a new fact of that kind comes with a migration of its own.
CREATE INDEX crm_events_state_changes ON crm_events (originator_id, originator_version)
    WHERE topic <> ALL (ARRAY['crm.BalanceReported', 'crm.ComplaintAssigned', 'crm.ComplaintEscalated', 'crm.FeeCharged', 'crm.HouseholdHeadDesignated', 'crm.MailingResponded', 'crm.MailingReturned', 'crm.StatementIssued']);
