"""Writes: starting rater sessions, issuing trials, recording votes, fits.

Every function here runs in one transaction and either does all it says or
nothing. Views and commands call these; they never write models themselves.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from studies import scheduling, selectors
from studies.ladder import EncodedStimulus
from studies.models import (
    Condition,
    Fit,
    Rater,
    RaterPlatform,
    RaterSession,
    SourceImage,
    Stimulus,
    Study,
    StudyStatus,
    Trial,
    Vote,
    VoteChoice,
    new_image_token,
)


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


# --- Rater sessions ----------------------------------------------------------


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


def _complete(session: RaterSession) -> None:
    session.status = RaterSession.Status.COMPLETED
    session.completed_at = timezone.now()
    session.save(update_fields=["status", "completed_at"])


# --- Trials --------------------------------------------------------------------


@transaction.atomic
def trial_next(*, session: RaterSession) -> Trial | None:
    """The trial the rater should judge now, or None when the session is finished.

    An issued trial without a vote is returned again (resume after a reload);
    otherwise a new pair is chosen by ``scheduling.choose_balanced_pair``.

    Raises
    ------
    NotAdmitted
        The session has not passed the study's screening.
    StudyNotOpen
        A new trial is needed but the study is paused or closed.
    """
    # Serialise concurrent requests of one session so positions stay unique.
    session = RaterSession.objects.select_for_update().select_related("study").get(pk=session.pk)
    if not session.is_admitted:
        raise NotAdmitted("this session has not passed the study's screening")
    if session.is_completed:
        return None
    pending = session.trials.filter(vote__isnull=True).order_by("position").first()
    if pending is not None:
        return pending
    issued = session.trials.count()
    if issued >= session.trials_total:
        _complete(session)
        return None
    study = session.study
    if not study.is_open:
        raise StudyNotOpen(f"study {study.slug!r} is {study.status}")
    trial = _issue_trial(session=session, position=issued)
    if trial is None:  # the rater has seen every pair the study has
        _complete(session)
    return trial


def _issued_counts(study: Study) -> scheduling.IssuedCounts:
    rows = Trial.objects.filter(session__study=study).values_list(
        "source_image_id", "left__condition_id", "right__condition_id"
    )
    counts: dict[scheduling.PairKey, int] = {}
    for image_id, left, right in rows:
        key = scheduling.pair_key(image_id, left, right)
        counts[key] = counts.get(key, 0) + 1
    return scheduling.IssuedCounts(pairs=counts)


def _issue_trial(*, session: RaterSession, position: int) -> Trial | None:
    study = session.study
    rng = random.Random(f"{study.seed}:{session.pk}:{position}")  # noqa: S311 - not a secret
    seen = {
        scheduling.pair_key(image_id, left, right)
        for image_id, left, right in session.trials.values_list(
            "source_image_id", "left__condition_id", "right__condition_id"
        )
    }
    choice = scheduling.choose_balanced_pair(
        image_ids=study.source_images.values_list("pk", flat=True),
        condition_ids=study.conditions.values_list("pk", flat=True),
        issued=_issued_counts(study),
        seen_by_rater=seen,
        rng=rng,
    )
    if choice is None:
        return None
    image = SourceImage.objects.get(pk=choice.image_id)
    stimuli = {
        s.condition_id: s
        for s in Stimulus.objects.filter(
            source_image=image,
            condition_id__in=[choice.left_condition_id, choice.right_condition_id],
        )
    }
    x, y, w, h = scheduling.choose_crop(
        width=image.width, height=image.height, crop_size=study.crop_size, rng=rng
    )
    return Trial.objects.create(
        session=session,
        position=position,
        source_image=image,
        left=stimuli[choice.left_condition_id],
        right=stimuli[choice.right_condition_id],
        crop_x=x,
        crop_y=y,
        crop_width=w,
        crop_height=h,
    )


# --- Votes ---------------------------------------------------------------------


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
    unchanged, so a client may retry until it hears back.

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
        A tie on a study that does not allow ties, or a negative count.
    """
    trial = (
        Trial.objects.select_related("session__study")
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
    if choice == Vote.Choice.TIE and not session.study.allow_ties:
        raise ServiceError("this study does not allow 'tie' answers")
    if response_ms < 0 or flips < 0:
        raise ServiceError("response_ms and flips must not be negative")
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
    answered = Vote.objects.filter(trial__session=session).count()
    if answered >= session.trials_total and not session.is_completed:
        _complete(session)
    return vote, True


# --- Fits ----------------------------------------------------------------------

# Seed of a fit requested without one: fixed, so that two fits of the same votes
# give the same numbers.
DEFAULT_FIT_SEED = 20260101


def fit_request(*, study: Study, requested_by: Any = None, seed: int = DEFAULT_FIT_SEED) -> Fit:
    """Queue a fit of the study's votes as a background task."""
    from studies.tasks import run_fit

    with transaction.atomic():
        fit = Fit.objects.create(
            study=study, requested_by=requested_by, anchor_codec=study.anchor_codec, seed=seed
        )

        def enqueue() -> None:
            result = run_fit.enqueue(fit.pk)
            Fit.objects.filter(pk=fit.pk).update(task_id=str(result.id))

        transaction.on_commit(enqueue)
    return fit


def fit_run(*, fit_id: int) -> Fit:
    """Run a queued fit: export the votes, fit, write the outputs, record the result.

    Called by the background task. A failure is recorded on the fit with its
    message; problems with the data (no votes yet, say) end the fit as failed
    without raising, anything unexpected is raised again after being recorded.
    """
    # The numerical stack is heavy; only the worker process needs it.
    from analysis.fit import fit_study, write_outputs
    from analysis.io import InputError

    with transaction.atomic():
        fit = Fit.objects.select_for_update().select_related("study").get(pk=fit_id)
        if fit.status != Fit.Status.QUEUED:
            return fit  # already run (a retried task)
        fit.status = Fit.Status.RUNNING
        fit.started_at = timezone.now()
        fit.save(update_fields=["status", "started_at"])

    study = fit.study
    votes = selectors.votes_frame(study)
    conditions = selectors.conditions_frame(study)
    relative_dir = f"fits/{study.slug}/{fit.pk}"
    out_dir = Path(settings.MEDIA_ROOT) / relative_dir
    try:
        if votes.empty:
            raise InputError("votes", None, "the study has no votes yet")
        result = fit_study(votes, conditions, anchor=fit.anchor_codec, seed=fit.seed)
        write_outputs(result, out_dir)
    except InputError as exc:
        _fit_fail(fit, str(exc), n_votes=len(votes))
        return fit
    except Exception as exc:
        _fit_fail(fit, f"{type(exc).__name__}: {exc}", n_votes=len(votes))
        raise
    fit.status = Fit.Status.SUCCEEDED
    fit.finished_at = timezone.now()
    fit.n_votes = len(votes)
    fit.output_dir = relative_dir
    fit.summary = {
        "bd_rate": json.loads(result.bd_rate.to_json(orient="records")),
        "diagnostics": result.diagnostics,
    }
    fit.save(update_fields=["status", "finished_at", "n_votes", "output_dir", "summary"])
    return fit


def _fit_fail(fit: Fit, message: str, *, n_votes: int) -> None:
    fit.status = Fit.Status.FAILED
    fit.finished_at = timezone.now()
    fit.error = message
    fit.n_votes = n_votes
    fit.save(update_fields=["status", "finished_at", "error", "n_votes"])


# --- Building a study ------------------------------------------------------------


def study_create(
    *,
    slug: str,
    title: str,
    owner: Any,
    anchor_codec: str,
    sources: Mapping[str, np.ndarray],
    stimuli: Sequence[EncodedStimulus],
    status: StudyStatus | str = StudyStatus.OPEN,
    **options: Any,
) -> Study:
    """Create a study with its source images, conditions and stimuli, all or nothing.

    ``sources`` maps image names to RGB arrays (the originals); ``stimuli`` are
    the encoded reconstructions from ``studies.ladder.encode_ladders``. Files
    are written under MEDIA_ROOT with opaque names; if anything fails, the
    files written so far are removed and no row is left behind.

    Raises
    ------
    ServiceError
        The slug is taken, the anchor codec has no conditions, or some
        condition lacks a stimulus for some image.
    """
    from codecs_adapter import png_bytes, sha256_bytes

    if Study.objects.filter(slug=slug).exists():
        raise ServiceError(f"a study with slug {slug!r} exists already")
    conditions = {(s.condition, s.codec, s.rate_index, s.target_bpp) for s in stimuli}
    if anchor_codec not in {c[1] for c in conditions}:
        raise ServiceError(f"anchor codec {anchor_codec!r} has no conditions in this study")
    present = {(s.condition, s.image) for s in stimuli}
    missing = [
        f"{condition} on {image}"
        for condition, *_ in sorted(conditions)
        for image in sources
        if (condition, image) not in present
    ]
    if missing:
        raise ServiceError("missing stimuli: " + ", ".join(missing))

    saved: list[str] = []

    def store(folder: str, token: str, data: bytes) -> str:
        name = default_storage.save(f"{folder}/{token}.png", ContentFile(data))
        saved.append(name)
        return name

    try:
        with transaction.atomic():
            study = Study.objects.create(
                slug=slug,
                title=title,
                owner=owner,
                anchor_codec=anchor_codec,
                status=status,
                **options,
            )
            images: dict[str, SourceImage] = {}
            for name, rgb in sources.items():
                png = png_bytes(rgb)
                token = new_image_token()
                images[name] = SourceImage.objects.create(
                    study=study,
                    name=name,
                    token=token,
                    file=store("sources", token, png),
                    width=rgb.shape[1],
                    height=rgb.shape[0],
                    sha256=sha256_bytes(png),
                )
            condition_rows = {
                name: Condition.objects.create(
                    study=study,
                    name=name,
                    codec=codec,
                    rate_index=rate_index,
                    target_bpp=target,
                )
                for name, codec, rate_index, target in sorted(conditions)
            }
            for s in stimuli:
                token = new_image_token()
                Stimulus.objects.create(
                    condition=condition_rows[s.condition],
                    source_image=images[s.image],
                    token=token,
                    file=store("stimuli", token, s.png),
                    sha256=s.sha256,
                    bitstream_bytes=s.bitstream_bytes,
                    bpp=s.bpp,
                    codec_library=s.library,
                    codec_version=s.version,
                    settings=s.settings,
                )
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return study
