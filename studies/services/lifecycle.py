"""A study's life: launch, pause, close; who may work on it; whose votes count."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from studies.models import Exclusion, Rater, Study, StudyStatus
from studies.services.errors import ServiceError

# Which status a study may go to from which.
TRANSITIONS = {
    StudyStatus.OPEN: {StudyStatus.DRAFT, StudyStatus.PAUSED},
    StudyStatus.PAUSED: {StudyStatus.OPEN},
    StudyStatus.CLOSED: {StudyStatus.DRAFT, StudyStatus.OPEN, StudyStatus.PAUSED},
}


@transaction.atomic
def study_set_status(*, study: Study, status: StudyStatus | str, reason: str = "") -> Study:
    """Launch (draft or paused -> open), pause (open -> paused) or close a study.

    ``reason`` is recorded when a study closes (its stopping rule says why it closed
    itself).

    Raises
    ------
    ServiceError
        The change is not allowed from the current status, or a study without
        stimuli would be opened.
    """
    status = StudyStatus(status)
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status == status:
        return study
    if StudyStatus(study.status) not in TRANSITIONS.get(status, set()):
        raise ServiceError(f"a {study.status} study cannot become {status}")
    if status == StudyStatus.OPEN and not study.conditions.exists():
        raise ServiceError(f"study {study.slug!r} has no stimuli yet (is its build finished?)")
    study.status = status
    study.closed_reason = reason[:300] if status == StudyStatus.CLOSED else ""
    study.save(update_fields=["status", "closed_reason"])
    return study


@transaction.atomic
def collaborator_add(*, study: Study, username: str) -> Any:
    """Give another researcher access to the study (they see and run it, as the owner)."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ServiceError(f"no researcher called {username!r}")
    if user.pk == study.owner_id:
        raise ServiceError(f"{username} owns this study already")
    study.collaborators.add(user)
    return user


@transaction.atomic
def collaborator_remove(*, study: Study, username: str) -> None:
    study.collaborators.remove(*study.collaborators.filter(username=username))


def rater_by_pseudonym(study: Study, pseudonym: str) -> Rater:
    """The rater behind an export pseudonym (``r<number>``) who took part in the study.

    Raises
    ------
    ServiceError
        No such rater in this study.
    """
    number = pseudonym.removeprefix("r")
    rater = (
        Rater.objects.filter(pk=int(number), sessions__study=study).first()
        if number.isdigit()
        else None
    )
    if rater is None:
        raise ServiceError(f"no rater {pseudonym!r} in study {study.slug!r}")
    return rater


@transaction.atomic
def exclusion_add(*, study: Study, rater: Rater, by: Any, reason: str) -> Exclusion:
    """Leave a rater's votes out of the study's future fits; who and why are recorded.

    Raises
    ------
    ServiceError
        Without a reason, or when the rater is excluded already.
    """
    reason = reason.strip()
    if not reason:
        raise ServiceError("an exclusion needs a reason")
    try:
        with transaction.atomic():
            return Exclusion.objects.create(study=study, rater=rater, excluded_by=by, reason=reason)
    except IntegrityError:
        raise ServiceError(f"rater r{rater.pk} is excluded already") from None


@transaction.atomic
def exclusion_remove(*, study: Study, rater: Rater) -> None:
    Exclusion.objects.filter(study=study, rater=rater).delete()
