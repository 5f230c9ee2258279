"""A rater's session: starting it, issuing trials, recording votes, ending it."""

from __future__ import annotations

import random
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from studies import scheduling
from studies.models import (
    Condition,
    ConditionKind,
    Rater,
    RaterPlatform,
    RaterSession,
    SessionStatus,
    SourceImage,
    Stimulus,
    Study,
    Trial,
    Vote,
    VoteChoice,
)
from studies.services.errors import (
    NotAdmitted,
    ServiceError,
    StudyNotOpen,
    TrialNotIssued,
    VoteConflict,
)

# Trials issued ahead of the one on screen, so the viewer can load their
# images while the rater judges (docs/api.md: "next").
LOOKAHEAD_TRIALS = 1
# Golden trials are never the first counted trial: raters settle in first.
GOLDEN_FIRST_POSITION = 1


def _rng(session: RaterSession, *parts: object) -> random.Random:
    """The session's own seeded random source for one decision.

    Keyed by the study's seed and the rater's identity (not a database id), so
    the same participants get the same schedule on any database.
    """
    rater = session.rater
    key = ":".join(str(p) for p in (session.study.seed, rater.platform, rater.external_id, *parts))
    return random.Random(key)  # noqa: S311 - scheduling, not secrets


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


@transaction.atomic
def trials_pending(*, session: RaterSession) -> list[Trial]:
    """The trial the rater should judge now, then the ones issued ahead of it.

    Unanswered trials are returned again (resume after a reload); new ones are
    issued until ``LOOKAHEAD_TRIALS`` wait behind the current one. An empty
    list means the session has ended.

    Raises
    ------
    NotAdmitted
        The session has not passed the study's screening.
    StudyNotOpen
        A new trial is needed but the study is paused or closed.
    """
    # Serialise concurrent requests of one session so positions stay unique.
    session = (
        RaterSession.objects.select_for_update(of=("self",))
        .select_related("study", "rater")
        .get(pk=session.pk)
    )
    if not session.is_admitted:
        raise NotAdmitted("this session has not passed the study's screening")
    if session.has_ended:
        return []
    pending = list(
        session.trials.filter(vote__isnull=True)
        .select_related("left__condition", "right__condition", "source_image")
        .order_by("position")[: 1 + LOOKAHEAD_TRIALS]
    )
    issued = session.trials.count()
    last_position = session.practice_total + session.trials_total
    while len(pending) < 1 + LOOKAHEAD_TRIALS and issued < last_position:
        if not session.study.is_open:
            if pending:
                break
            raise StudyNotOpen(f"study {session.study.slug!r} is {session.study.status}")
        trial = _issue_trial(session=session, position=issued)
        if trial is None:  # the rater has seen every pair the study has
            break
        pending.append(trial)
        issued += 1
    if not pending:
        session_end(session=session, status=SessionStatus.COMPLETED)
    return pending


def trial_next(*, session: RaterSession) -> Trial | None:
    """The trial to judge now, or None when the session has ended (see trials_pending)."""
    pending = trials_pending(session=session)
    return pending[0] if pending else None


def golden_positions(session: RaterSession) -> set[int]:
    """Counted positions (0-based, after practice) of the session's golden trials."""
    study = session.study
    candidates = range(GOLDEN_FIRST_POSITION, session.trials_total)
    wanted = min(round(study.golden_rate * session.trials_total), len(candidates))
    return set(_rng(session, "golden").sample(candidates, wanted))


def _issue_trial(*, session: RaterSession, position: int) -> Trial | None:
    counted = position - session.practice_total
    if counted < 0:
        return _issue_golden(session=session, position=position, practice=True)
    if counted in golden_positions(session):
        return _issue_golden(session=session, position=position, practice=False)
    return _issue_comparison(session=session, position=position)


def _study_trials(study: Study) -> Any:
    """Trials that compare study conditions (not golden, not practice)."""
    return Trial.objects.filter(session__study=study, is_golden=False, is_practice=False)


def _issued_counts(study: Study) -> scheduling.IssuedCounts:
    counts: dict[scheduling.PairKey, int] = {}
    for image_id, left, right in _study_trials(study).values_list(
        "source_image_id", "left__condition_id", "right__condition_id"
    ):
        key = scheduling.pair_key(image_id, left, right)
        counts[key] = counts.get(key, 0) + 1
    return scheduling.IssuedCounts(pairs=counts)


def _issue_comparison(*, session: RaterSession, position: int) -> Trial | None:
    study = session.study
    rng = _rng(session, position)
    seen: set[scheduling.PairKey] = set()
    side_balance: dict[int, int] = {}
    for image_id, left, right in (
        _study_trials(study)
        .filter(session=session)
        .values_list("source_image_id", "left__condition_id", "right__condition_id")
    ):
        seen.add(scheduling.pair_key(image_id, left, right))
        side_balance[left] = side_balance.get(left, 0) + 1
        side_balance[right] = side_balance.get(right, 0) - 1
    choice = scheduling.choose_balanced_pair(
        image_ids=study.source_images.values_list("pk", flat=True),
        condition_ids=study.conditions.filter(kind=ConditionKind.STUDY).values_list(
            "pk", flat=True
        ),
        issued=_issued_counts(study),
        seen_by_rater=seen,
        side_balance=side_balance,
        rng=rng,
    )
    if choice is None:
        return None
    return _create_trial(
        session=session,
        position=position,
        image=SourceImage.objects.get(pk=choice.image_id),
        left_condition=choice.left_condition_id,
        right_condition=choice.right_condition_id,
        rng=rng,
    )


def _issue_golden(*, session: RaterSession, position: int, practice: bool) -> Trial:
    """The original against a heavily degraded version, on a random image."""
    study = session.study
    rng = _rng(session, position)
    golden = {
        c.kind: c.pk
        for c in Condition.objects.filter(
            study=study,
            kind__in=[ConditionKind.GOLDEN_REFERENCE, ConditionKind.GOLDEN_DEGRADED],
        )
    }
    pair = [golden[ConditionKind.GOLDEN_REFERENCE], golden[ConditionKind.GOLDEN_DEGRADED]]
    rng.shuffle(pair)
    images = list(study.source_images.order_by("pk"))
    return _create_trial(
        session=session,
        position=position,
        image=rng.choice(images),
        left_condition=pair[0],
        right_condition=pair[1],
        rng=rng,
        is_golden=not practice,
        is_practice=practice,
    )


def _create_trial(
    *,
    session: RaterSession,
    position: int,
    image: SourceImage,
    left_condition: int,
    right_condition: int,
    rng: random.Random,
    is_golden: bool = False,
    is_practice: bool = False,
) -> Trial:
    stimuli = {
        s.condition_id: s
        for s in Stimulus.objects.filter(
            source_image=image, condition_id__in=[left_condition, right_condition]
        )
    }
    x, y, w, h = scheduling.choose_crop(
        width=image.width, height=image.height, crop_size=session.study.crop_size, rng=rng
    )
    return Trial.objects.create(
        session=session,
        position=position,
        source_image=image,
        left=stimuli[left_condition],
        right=stimuli[right_condition],
        is_golden=is_golden,
        is_practice=is_practice,
        crop_x=x,
        crop_y=y,
        crop_width=w,
        crop_height=h,
    )


# --- Votes -------------------------------------------------------------------------


@transaction.atomic
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

    Raises
    ------
    TrialNotIssued
        The trial does not exist or was issued to another session.
    NotAdmitted
        The session has not passed the study's screening.
    VoteConflict
        The trial already has a different vote, or the client id was used for
        another trial.
    ServiceError
        A tie on a study without ties, a negative count, or a choice made
        before the study's minimum viewing time or number of flips.
    """
    trial = (
        Trial.objects.select_related("session__study", "left__condition")
        .filter(public_id=trial_id, session=session)
        .first()
    )
    if trial is None:
        raise TrialNotIssued(f"trial {trial_id} was not issued to this session")
    if not session.is_admitted:
        raise NotAdmitted("this session has not passed the study's screening")
    existing = Vote.objects.filter(client_vote_id=client_vote_id).first()
    if existing is not None:
        if existing.trial_id != trial.pk:
            raise VoteConflict(f"client_vote_id {client_vote_id} was used for another trial")
        return existing, False
    if Vote.objects.filter(trial=trial).exists():
        raise VoteConflict(f"trial {trial_id} already has a different vote")
    _check_answer(trial.session.study, choice=choice, response_ms=response_ms, flips=flips)
    try:
        with transaction.atomic():
            vote = Vote.objects.create(
                trial=trial,
                client_vote_id=client_vote_id,
                choice=choice,
                response_ms=response_ms,
                flips=flips,
            )
    except IntegrityError:
        # A concurrent retry stored it first; answer as for a retry.
        existing = Vote.objects.filter(client_vote_id=client_vote_id, trial=trial).first()
        if existing is None:
            raise VoteConflict(f"trial {trial_id} already has a different vote") from None
        return existing, False
    _after_vote(session=trial.session, trial=trial)
    return vote, True


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


def _after_vote(*, session: RaterSession, trial: Trial) -> None:
    if session.has_ended:
        return
    if trial.is_golden and golden_failures(session) > Study.GOLDEN_FAILURES_ALLOWED:
        session_end(session=session, status=SessionStatus.FAILED_ATTENTION)
        return
    counted = Vote.objects.filter(trial__session=session, trial__is_practice=False).count()
    if counted >= session.trials_total:
        session_end(session=session, status=SessionStatus.COMPLETED)
