"""Errors a domain raises for a human to read; libs/grpc maps each kind to one gRPC status.

Aggregates and command handlers raise these (no framework imports here), so the
same refusal reads the same through gRPC, the CLI and the tests:
InvalidArgument → INVALID_ARGUMENT, NotFound → NOT_FOUND, IllegalTransition →
FAILED_PRECONDITION, PermissionDenied → PERMISSION_DENIED, QuotaExceeded →
RESOURCE_EXHAUSTED; the store's ConcurrencyConflict → ABORTED.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command refused by the rules; the message says what is wrong and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """A field of the command is wrong; `field` names it (dotted path, e.g. hyperparameters.lr)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problems = {field: message}  # every wrong field → what to fix (subclasses may list several)


class InvalidFields(InvalidArgument):
    """Several fields are wrong at once, so a user fixes a request in one round trip.

    `problems` maps each dotted field to what to fix; `field` is the first of them, and the message
    lists every one.
    """

    def __init__(self, problems: dict[str, str]) -> None:
        # InvalidArgument.__init__ would prefix only the first field; the message must name every one.
        DomainError.__init__(self, "; ".join(f"{field}: {what}" for field, what in problems.items()))
        self.field = next(iter(problems))
        self.problems = problems


class NotFound(DomainError):
    """The named thing does not exist (or is not visible to the caller)."""


class IllegalTransition(DomainError):
    """The command does not apply in the current state, e.g. pausing a completed job."""


class PermissionDenied(DomainError):
    """The caller's roles do not allow this command."""


class QuotaExceeded(DomainError):
    """A plan limit would be passed (jobs per month, dataset bytes, active models)."""
