"""Errors the domain raises; the API maps each kind to one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses. `code` is stable and machine-readable."""

    code = "domain_error"

    def __init__(
        self, message: str, *, code: str | None = None, field: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class RuleViolated(DomainError):
    """A business rule forbids the event (422 with the rule's code)."""

    code = "rule_violated"


class UnknownEntity(RuleViolated):
    """The event is about a customer, account, ... the platform has never seen."""

    code = "unknown_entity"


class NotFound(DomainError):
    """A read asked for something that does not exist (404)."""

    code = "not_found"


class Conflict(DomainError):
    """The same event_id was posted before with different content (409)."""

    code = "event_id_conflict"
