"""A rater's session: starting it, issuing trials, recording votes, ending it."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from studies.models import (
    Rater,
    RaterPlatform,
    RaterSession,
    SessionStatus,
    Stimulus,
    Study,
    Trial,
    Vote,
    VoteChoice,
)
from studies.services import planning, rating_sql
from studies.services.errors import (
    NotAdmitted,
    ServiceError,
    SessionExpired,
    StudyNotOpen,
    TrialNotIssued,
    VoteConflict,
)
from studies.services.issuing import TrialIssuer
from studies.services.issuing import golden_positions as golden_positions  # part of this API

# Trials issued ahead of the one on screen, so the viewer can load their
# images while the rater judges (docs/api.md: "next").
LOOKAHEAD_TRIALS = 1


# --- Sessions --------------------------------------------------------------------


@transaction.atomic
def rater_session_start(
    *,
    study: Study,
    platform: RaterPlatform | str,
    participant: str,
    recruitment: dict[str, Any] | None = None,
    user_agent: str = "",
) -> tuple[RaterSession, bool]:
    """Start a rater's session on a study, or return the one they already have.

    Returns the session and whether it was created. A returning participant
    (same platform and id) resumes their session, whatever the study's status;
    a new participant needs an open study.

    Raises
    ------
    StudyNotOpen
        The study does not accept new raters.
    ServiceError
        The participant id is empty.
    """
    participant = participant.strip()
    if not participant:
        raise ServiceError("participant must not be empty")
    rater, _ = Rater.objects.get_or_create(platform=platform, external_id=participant)
    existing = RaterSession.objects.filter(study=study, rater=rater).first()
    if existing is not None:
        return existing, False
    if not study.is_open:
        raise StudyNotOpen(f"study {study.slug!r} is {study.status}, not accepting new raters")
    try:
        with transaction.atomic():
            session = RaterSession.objects.create(
                study=study,
                rater=rater,
                trials_total=study.trials_per_session,
                practice_total=study.practice_trials,
                recruitment=recruitment or {},
                user_agent=user_agent[:300],
            )
    except IntegrityError:
        # The same participant's other request created it first.
        return RaterSession.objects.get(study=study, rater=rater), False
    return session, True


@transaction.atomic
def session_mark_screened(*, session: RaterSession) -> RaterSession:
    """Record that the session passed the study's screening (called by the screening app)."""
    if session.screening_passed_at is None:
        session.screening_passed_at = timezone.now()
        session.save(update_fields=["screening_passed_at"])
    return session


@transaction.atomic
def session_end(*, session: RaterSession, status: SessionStatus) -> RaterSession:
    """End an active session as completed, failed attention or screened out."""
    if status == SessionStatus.ACTIVE:
        raise ValueError("a session is ended with a final status, not 'active'")
    if not session.has_ended:
        session.status = status
        session.completed_at = timezone.now()
        session.save(update_fields=["status", "completed_at"])
    return session


# --- Trials ------------------------------------------------------------------------


def trials_pending(*, session: RaterSession) -> list[Trial]:
    """The trial the rater should judge now, then the ones issued ahead of it.

    Unanswered trials are returned again (resume after a reload); new ones are
    issued until ``LOOKAHEAD_TRIALS`` wait behind the current one. An empty
    list means the session has ended. The trials come with their session (read
    again), their source image and stimuli, and the stimuli's conditions.

    Raises
    ------
    NotAdmitted
        The session has not passed the study's screening.
    SessionExpired
        The session (not ended) is older than ``RATER_SESSION_MAX_AGE``.
    StudyNotOpen
        A new trial is needed but the study is paused or closed.
    """
    found = _pending_for(session.pk)
    if found is None:
        raise RaterSession.DoesNotExist(f"no rater session {session.pk}")
    return found[1]


def trials_pending_by_token(*, token: str) -> tuple[RaterSession, list[Trial]] | None:
    """:func:`trials_pending` for the session with this bearer token, None if there is none.

    Returns the session too (read in the same statement as its trials).
    """
    return _pending_for(token)


# How often a call of trials_pending is worked out again after a concurrent call
# for the same session issued a trial first.
PENDING_ATTEMPTS = 5


def _pending_for(session_key: int | str) -> tuple[RaterSession, list[Trial]] | None:
    """trials_pending for the session with this id or token, in one transaction.

    Two calls for one session at once (a client's retry while the first is under
    way) read the same trials and would issue a trial at the same position: the
    session's unique positions refuse the later one, which then reads the
    session again, with the other's trials. So positions stay unique and no pair
    is issued twice to a rater, without locking the session.
    """
    attempt = 1
    while True:
        try:
            with transaction.atomic():
                found = rating_sql.session_for_next(session_key)
                if found is None:
                    return None
                session, issued_trials = found
                return session, _pending(session, issued_trials)
        except IntegrityError:
            if attempt == PENDING_ATTEMPTS:
                raise
            attempt += 1


def _pending(session: RaterSession, issued_trials: list[rating_sql.SessionTrial]) -> list[Trial]:
    """trials_pending on a session and its trials, read in the caller's transaction."""
    if not session.is_admitted:
        raise NotAdmitted("this session has not passed the study's screening")
    if session.has_ended:
        return []
    _check_not_expired(session)
    study = session.study
    unanswered = [t for t in issued_trials if not t.answered][: 1 + LOOKAHEAD_TRIALS]
    stimuli = rating_sql.study_stimuli(study)
    pending = [rating_sql.unanswered_trial(session, t, stimuli) for t in unanswered]
    issued = len(issued_trials)
    last_position = session.practice_total + session.trials_total
    if len(pending) < 1 + LOOKAHEAD_TRIALS and issued < last_position:
        issuer = TrialIssuer(session, issued_trials, stimuli)
        while len(pending) < 1 + LOOKAHEAD_TRIALS and issued < last_position:
            if not study.is_open:
                if pending:
                    break
                raise StudyNotOpen(f"study {study.slug!r} is {study.status}")
            trial = issuer.issue(position=issued)
            if trial is None:  # the rater has seen every pair the study has
                break
            pending.append(rating_sql.with_images(session, trial, stimuli))
            issued += 1
        issuer.save_counts()
    if not pending:
        session_end(session=session, status=SessionStatus.COMPLETED)
    return pending


def trial_next(*, session: RaterSession) -> Trial | None:
    """The trial to judge now, or None when the session has ended (see trials_pending)."""
    pending = trials_pending(session=session)
    return pending[0] if pending else None


# --- Votes -------------------------------------------------------------------------


def vote_record(
    *,
    session: RaterSession,
    trial_id: uuid.UUID,
    choice: VoteChoice | str,
    client_vote_id: uuid.UUID,
    response_ms: int,
    flips: int,
) -> tuple[Vote, bool]:
    """Record the session's answer to a trial; returns the vote and whether it is new.

    Sending the same ``client_vote_id`` again returns the stored vote
    unchanged, so a client may retry until it hears back. A vote for an
    issued trial is kept even when the study closed or the session ended
    meanwhile. The last counted vote completes the session; a failed golden
    trial beyond ``Study.GOLDEN_FAILURES_ALLOWED`` ends it.

    The vote is stored by one INSERT, its own transaction; a vote that may
    end the session is stored in one transaction with the session's end.

    Raises
    ------
    TrialNotIssued
        The trial does not exist or was issued to another session.
    NotAdmitted
        The session has not passed the study's screening.
    VoteConflict
        The trial already has a different vote, or the client id was used for
        another trial.
    SessionExpired
        A new vote (not a retry of a stored one) for a session older than
        ``RATER_SESSION_MAX_AGE``.
    ServiceError
        A tie on a study without ties, a negative count, or a choice made
        before the study's minimum viewing time or number of flips.
    """
    client_vote_id = uuid.UUID(str(client_vote_id))
    target = rating_sql.vote_target(
        session=session.pk, trial_id=trial_id, client_vote_id=client_vote_id
    )
    if target is None:
        raise TrialNotIssued(f"trial {trial_id} was not issued to this session")
    return _vote_store(
        target,
        choice=choice,
        client_vote_id=client_vote_id,
        response_ms=response_ms,
        flips=flips,
    )


def vote_record_by_token(
    *,
    token: str,
    trial_id: uuid.UUID,
    choice: VoteChoice | str,
    client_vote_id: uuid.UUID,
    response_ms: int,
    flips: int,
) -> tuple[Vote, bool] | None:
    """:func:`vote_record` for the session with this bearer token, None if there is none.

    The rater API's way in: the session and the trial are read in one statement.

    Raises
    ------
    TrialNotIssued, NotAdmitted, VoteConflict, SessionExpired, ServiceError
        As :func:`vote_record`.
    """
    client_vote_id = uuid.UUID(str(client_vote_id))
    target = rating_sql.vote_target(session=token, trial_id=trial_id, client_vote_id=client_vote_id)
    if target is None:
        if rating_sql.session_by_token(token) is None:
            return None
        raise TrialNotIssued(f"trial {trial_id} was not issued to this session")
    return _vote_store(
        target,
        choice=choice,
        client_vote_id=client_vote_id,
        response_ms=response_ms,
        flips=flips,
    )


def _vote_store(
    target: rating_sql.VoteTarget,
    *,
    choice: VoteChoice | str,
    client_vote_id: uuid.UUID,
    response_ms: int,
    flips: int,
) -> tuple[Vote, bool]:
    session, trial = target.session, target.trial
    if not session.is_admitted:
        raise NotAdmitted("this session has not passed the study's screening")
    if target.client_id_used_elsewhere:
        raise VoteConflict(f"client_vote_id {client_vote_id} was used for another trial")
    if target.vote_id is not None:
        if target.vote_client_id == client_vote_id:
            return _stored_vote(target.vote_id), False
        raise VoteConflict(f"trial {trial.public_id} already has a different vote")
    _check_not_expired(session)
    _check_answer(session.study, choice=choice, response_ms=response_ms, flips=flips)
    if trial.is_golden or trial.is_practice:
        # Whether the answer was right (feedback, attention) needs the left
        # stimulus's condition: one query for these few trials.
        trial.left = Stimulus.objects.select_related("condition").get(pk=trial.left_id)
    counted = target.counted_votes + (0 if trial.is_practice else 1)
    may_end = not session.has_ended and (trial.is_golden or counted >= session.trials_total)
    try:
        # Inside a caller's transaction, the savepoint keeps it usable if the
        # INSERT fails.
        with transaction.atomic() if may_end or connection.in_atomic_block else nullcontext():
            vote = rating_sql.vote_insert(
                trial=trial,
                client_vote_id=client_vote_id,
                choice=choice,
                response_ms=response_ms,
                flips=flips,
            )
            if may_end:
                _after_vote(session=session, trial=trial, counted_votes=counted)
    except IntegrityError:
        # A concurrent request stored a vote for this trial or with this id
        # first: answer as for a retry, or as a conflict.
        existing = Vote.objects.filter(client_vote_id=client_vote_id).first()
        if existing is None:
            raise VoteConflict(f"trial {trial.public_id} already has a different vote") from None
        if existing.trial_id != trial.pk:
            raise VoteConflict(
                f"client_vote_id {client_vote_id} was used for another trial"
            ) from None
        return _stored_vote(existing.pk), False
    if session.study.needs_refreshes and not trial.is_practice:
        planning.refresh_if_due(study=session.study)
    return vote, True


def _stored_vote(pk: int) -> Vote:
    return Vote.objects.select_related("trial__left__condition").get(pk=pk)


def _check_not_expired(session: RaterSession) -> None:
    if session.has_expired():
        hours = settings.RATER_SESSION_MAX_AGE / 3600
        raise SessionExpired(
            f"this session started more than {hours:g} hours ago and has expired; "
            "it takes no more answers"
        )


def _check_answer(study: Study, *, choice: str, response_ms: int, flips: int) -> None:
    if choice == VoteChoice.TIE and not study.allow_ties:
        raise ServiceError("this study does not allow 'tie' answers")
    if response_ms < 0 or flips < 0:
        raise ServiceError("response_ms and flips must not be negative")
    if response_ms < study.min_view_ms:
        raise ServiceError(
            f"response_ms {response_ms} is below the study's minimum viewing time "
            f"of {study.min_view_ms} ms"
        )
    if flips < study.required_flips:
        raise ServiceError(
            f"flips {flips} is below the {study.required_flips} flips this study requires"
        )


def golden_failures(session: RaterSession) -> int:
    """Golden trials of the session answered with anything but the original."""
    failures = 0
    for trial in session.trials.filter(is_golden=True, vote__isnull=False).select_related(
        "vote", "left__condition"
    ):
        if trial.vote.choice != trial.golden_answer:
            failures += 1
    return failures


def _after_vote(*, session: RaterSession, trial: Trial, counted_votes: int) -> None:
    if session.has_ended:
        return
    if trial.is_golden and golden_failures(session) > Study.GOLDEN_FAILURES_ALLOWED:
        session_end(session=session, status=SessionStatus.FAILED_ATTENTION)
        return
    if counted_votes >= session.trials_total:
        session_end(session=session, status=SessionStatus.COMPLETED)
