"""What the services refuse, each with a message naming the rule."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the rules do not allow; the message says which rule."""


class StudyNotOpen(ServiceError):
    pass


class NotAdmitted(ServiceError):
    pass


class TrialNotIssued(ServiceError):
    pass


class VoteConflict(ServiceError):
    pass


class SessionExpired(ServiceError):
    pass
