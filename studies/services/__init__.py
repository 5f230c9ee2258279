"""Writes: rater sessions, trials, votes, building studies, fits.

Every function here runs in one transaction and either does all it says or
nothing. Views, the API and commands call these; they never write models
themselves.
"""

from __future__ import annotations

from studies.services.building import study_add_stimuli, study_create
from studies.services.errors import (
    NotAdmitted,
    ServiceError,
    SessionExpired,
    StudyNotOpen,
    TrialNotIssued,
    VoteConflict,
)
from studies.services.fits import DEFAULT_FIT_SEED, fit_request, fit_run
from studies.services.lifecycle import (
    collaborator_add,
    collaborator_remove,
    exclusion_add,
    exclusion_remove,
    rater_by_pseudonym,
    study_set_status,
)
from studies.services.rating import (
    golden_failures,
    rater_session_start,
    session_end,
    session_mark_screened,
    trial_next,
    trials_pending,
    trials_pending_by_token,
    vote_record,
    vote_record_by_token,
)
from studies.services.specs import study_build_run, study_create_from_spec

__all__ = [
    "DEFAULT_FIT_SEED",
    "collaborator_add",
    "collaborator_remove",
    "exclusion_add",
    "exclusion_remove",
    "rater_by_pseudonym",
    "study_add_stimuli",
    "study_build_run",
    "study_create_from_spec",
    "study_set_status",
    "NotAdmitted",
    "ServiceError",
    "SessionExpired",
    "StudyNotOpen",
    "TrialNotIssued",
    "VoteConflict",
    "fit_request",
    "fit_run",
    "golden_failures",
    "rater_session_start",
    "session_end",
    "session_mark_screened",
    "study_create",
    "trial_next",
    "trials_pending",
    "trials_pending_by_token",
    "vote_record",
    "vote_record_by_token",
]
