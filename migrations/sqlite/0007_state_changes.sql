-- See migrations/postgresql/0007_state_changes.sql.
CREATE INDEX stored_events_state_changes ON stored_events (originator_id, originator_version)
    WHERE topic NOT IN ('crm.BalanceReported', 'crm.ComplaintAssigned', 'crm.ComplaintEscalated', 'crm.FeeCharged', 'crm.HouseholdHeadDesignated', 'crm.MailingResponded', 'crm.MailingReturned', 'crm.StatementIssued');
