"""The screening a rater passes before comparing: display, colour vision, artifacts.

Order: the display check (per session: it is about the device), then the
colour plates and the artifact staircase (once per rater identity and
screening version, whatever the study or browser). Each study's policy
decides which tests it needs and what passes; a rater who took a test for an
earlier study is judged on the stored result, never tested again.
"""

from __future__ import annotations

import enum
import random
import secrets
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from screening import artifacts, plates, staircase
from screening.models import (
    SCREENING_VERSION,
    ArtifactItem,
    ArtifactTrial,
    DisplayCheck,
    PlateItem,
    ScreeningAttempt,
    ScreeningImage,
    ScreeningPolicy,
)
from screening.rules import DisplayReport, judge_display
from studies.models import RaterSession, SessionStatus, Study
from studies.services import session_end, session_mark_screened

# The plates every attempt shows, in order: one everyone can read, two of each
# red-green kind, one blue-yellow.
PLATE_SEQUENCE = (
    plates.PlateKind.DEMONSTRATION,
    plates.PlateKind.PROTAN,
    plates.PlateKind.DEUTAN,
    plates.PlateKind.TRITAN,
    plates.PlateKind.DEUTAN,
    plates.PlateKind.PROTAN,
)
STAIRCASE = artifacts.STAIRCASE
# The artifact test shows the original and the compressed item side by side.
ARTIFACT_PANELS = 2


class Step(enum.StrEnum):
    DISPLAY = "display"
    COLOUR = "colour"
    ARTIFACTS = "artifacts"
    DONE = "done"


class ScreeningNotReady(Exception):
    """The artifact item bank of this screening version has not been built."""


def policy_for(study: Study) -> ScreeningPolicy:
    policy, _ = ScreeningPolicy.objects.get_or_create(study=study)
    return policy


@transaction.atomic
def policy_set(*, study: Study, **values: Any) -> ScreeningPolicy:
    """Set a study's screening policy (require_colour, require_tritan, require_artifacts,
    artifact_cutoff_level); unnamed fields keep their defaults or current values."""
    policy = policy_for(study)
    for name, value in values.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    return policy


# --- Display ---------------------------------------------------------------------


def shown_size(session: RaterSession) -> tuple[int, int]:
    """The largest image or crop the session's study shows, in image pixels."""
    study = session.study
    largest = study.source_images.aggregate(w=Max("width"), h=Max("height"))
    return min(largest["w"] or 0, study.crop_size), min(largest["h"] or 0, study.crop_size)


@transaction.atomic
def display_check_record(*, session: RaterSession, report: DisplayReport) -> DisplayCheck:
    """Store a display report and the server's verdict (a refusal may be re-checked).

    The display must show the study's images, and the artifact test's pair,
    at one image pixel per device pixel.
    """
    width, height = shown_size(session)
    verdict = judge_display(
        report, shown_width=width, shown_height=height, panels=session.study.mode.panels
    )
    if verdict.accepted and policy_for(session.study).require_artifacts:
        verdict = judge_display(
            report,
            shown_width=artifacts.ITEM_SIDE,
            shown_height=artifacts.ITEM_SIDE,
            panels=ARTIFACT_PANELS,
        )
    return DisplayCheck.objects.create(
        session=session,
        device_pixel_ratio=report.device_pixel_ratio,
        viewport_width=report.viewport_width,
        viewport_height=report.viewport_height,
        screen_width=report.screen_width,
        screen_height=report.screen_height,
        color_depth=report.color_depth,
        zoom=report.zoom,
        accepted=verdict.accepted,
        reason=verdict.reason,
    )


# --- The attempt ---------------------------------------------------------------------


def attempt_for(session: RaterSession) -> ScreeningAttempt:
    """The rater's screening of this version, created with its plates on first need."""
    attempt = ScreeningAttempt.objects.filter(
        rater=session.rater, version=SCREENING_VERSION
    ).first()
    if attempt is not None:
        return attempt
    with transaction.atomic():
        attempt, created = ScreeningAttempt.objects.get_or_create(
            rater=session.rater,
            version=SCREENING_VERSION,
            defaults={"seed": secrets.randbelow(2**31)},
        )
        if created:
            rng = random.Random(attempt.seed)  # noqa: S311 - not a secret; fresh per attempt
            for position, kind in enumerate(PLATE_SEQUENCE):
                seed = rng.randrange(2**48)
                PlateItem.objects.create(
                    attempt=attempt,
                    position=position,
                    kind=kind,
                    seed=seed,
                    expected=plates.plate_answer(kind, seed),
                )
    return attempt


def next_step(session: RaterSession) -> Step:
    """What the rater has to do next before comparing."""
    if not session.display_checks.filter(accepted=True).exists():
        return Step.DISPLAY
    policy = policy_for(session.study)
    attempt = attempt_for(session)
    needs_colour = policy.require_colour or policy.require_tritan
    if needs_colour and attempt.colour_finished_at is None:
        return Step.COLOUR
    if needs_colour and not colour_passed(attempt, policy):
        return Step.DONE  # failed already: no need to spend the rater's time further
    if policy.require_artifacts and attempt.artifacts_finished_at is None:
        return Step.ARTIFACTS
    return Step.DONE


def colour_passed(attempt: ScreeningAttempt, policy: ScreeningPolicy) -> bool:
    """Demonstration plate and every red-green plate right (and tritan, if required)."""
    required = {plates.PlateKind.DEMONSTRATION, plates.PlateKind.PROTAN, plates.PlateKind.DEUTAN}
    if policy.require_tritan:
        required.add(plates.PlateKind.TRITAN)
    return all(p.correct for p in attempt.plates.all() if p.kind in required)


def artifacts_passed(attempt: ScreeningAttempt, policy: ScreeningPolicy) -> bool:
    threshold = attempt.artifact_threshold
    return threshold is not None and threshold >= policy.artifact_cutoff_level


@transaction.atomic
def screening_decide(*, session: RaterSession) -> bool:
    """Admit the session or end it as screened out, once every required test is done."""
    if next_step(session) != Step.DONE:
        raise ValueError("the screening is not finished")
    policy = policy_for(session.study)
    attempt = attempt_for(session)
    passed = True
    if policy.require_colour or policy.require_tritan:
        passed &= colour_passed(attempt, policy)
    if policy.require_artifacts:
        passed &= artifacts_passed(attempt, policy)
    if passed:
        session_mark_screened(session=session)
    else:
        session_end(session=session, status=SessionStatus.SCREENED_OUT)
    return passed


# --- Colour plates ------------------------------------------------------------------


def plate_current(attempt: ScreeningAttempt) -> PlateItem | None:
    """The first unanswered plate, marked as shown now if it was not shown yet."""
    plate = attempt.plates.filter(answered_at__isnull=True).order_by("position").first()
    if plate is not None and plate.shown_at is None:
        plate.shown_at = timezone.now()
        plate.save(update_fields=["shown_at"])
    return plate


@transaction.atomic
def plate_answer(*, attempt: ScreeningAttempt, token: str, answer: str) -> PlateItem:
    """Record the answer to a plate; a second answer to the same plate is ignored."""
    plate = PlateItem.objects.select_for_update().get(attempt=attempt, token=token)
    if plate.answered_at is None:
        plate.answer = answer.strip()[:32]
        plate.answered_at = timezone.now()
        plate.correct = plates.normalise_answer(plate.answer) == plate.expected
        plate.save(update_fields=["answer", "answered_at", "correct"])
    if not attempt.plates.filter(answered_at__isnull=True).exists():
        ScreeningAttempt.objects.filter(pk=attempt.pk, colour_finished_at__isnull=True).update(
            colour_finished_at=timezone.now()
        )
    return plate


# --- Artifact staircase -----------------------------------------------------------


def _answered(attempt: ScreeningAttempt) -> list[tuple[int, bool]]:
    return [
        (t.level, bool(t.correct))
        for t in attempt.artifact_trials.filter(answered_at__isnull=False).order_by("position")
    ]


@transaction.atomic
def artifact_current(attempt: ScreeningAttempt) -> ArtifactTrial | None:
    """The item to answer now (issued by the staircase), or None when the test is over.

    Raises
    ------
    ScreeningNotReady
        The item bank of this screening version is empty (run screening_build).
    """
    attempt = ScreeningAttempt.objects.select_for_update().get(pk=attempt.pk)
    pending = attempt.artifact_trials.filter(answered_at__isnull=True).first()
    if pending is None:
        answered = _answered(attempt)
        state = staircase.replay(STAIRCASE, answered)
        if state.next_level is None:
            _finish_artifacts(attempt, answered)
            return None
        pending = _issue_artifact(attempt, position=len(answered), level=state.next_level)
    if pending.shown_at is None:
        pending.shown_at = timezone.now()
        pending.save(update_fields=["shown_at"])
    return pending


def _issue_artifact(attempt: ScreeningAttempt, *, position: int, level: int) -> ArtifactTrial:
    items = list(
        ArtifactItem.objects.filter(image__version=attempt.version)
        .select_related("image")
        .order_by("pk")
    )
    if not items:
        raise ScreeningNotReady(
            f"the artifact items of screening {attempt.version} are missing: "
            "run `python manage.py screening_build`"
        )
    rng = random.Random(f"{attempt.seed}:{position}")  # noqa: S311 - not a secret
    # The nearest level that has items (every level has some in a full bank).
    available = sorted({i.level for i in items}, key=lambda lv: (abs(lv - level), lv))
    at_level = [i for i in items if i.level == available[0]]
    previous = attempt.artifact_trials.order_by("-position").first()
    fresh = [i for i in at_level if previous is None or i.image_id != previous.item.image_id]
    item = rng.choice(fresh or at_level)
    return ArtifactTrial.objects.create(
        attempt=attempt,
        position=position,
        level=level,
        item=item,
        compressed_side=rng.choice([ArtifactTrial.Side.LEFT, ArtifactTrial.Side.RIGHT]),
    )


def _finish_artifacts(attempt: ScreeningAttempt, answered: list[tuple[int, bool]]) -> None:
    level = staircase.threshold(STAIRCASE, answered)
    attempt.artifact_threshold = level
    attempt.artifact_threshold_bpp = artifacts.level_bpp(level)
    attempt.artifacts_finished_at = timezone.now()
    attempt.save(
        update_fields=["artifact_threshold", "artifact_threshold_bpp", "artifacts_finished_at"]
    )


@transaction.atomic
def artifact_answer(*, attempt: ScreeningAttempt, position: int, answer: str) -> ArtifactTrial:
    """Record which side the rater thinks is compressed; repeated answers are ignored."""
    trial = ArtifactTrial.objects.select_for_update().get(attempt=attempt, position=position)
    if trial.answered_at is None:
        trial.answer = answer
        trial.answered_at = timezone.now()
        trial.correct = answer == trial.compressed_side
        trial.save(update_fields=["answer", "answered_at", "correct"])
    return trial


# --- The item bank -------------------------------------------------------------------


@transaction.atomic
def artifact_bank_build(
    *,
    version: str = SCREENING_VERSION,
    images: dict[str, np.ndarray] | None = None,
    items: Iterable[artifacts.BankItem] | None = None,
) -> int:
    """Encode and store the artifact items of a screening version (idempotent).

    Returns the number of items. ``images`` (name -> RGB array) replaces the
    standard screening images, and ``items`` items already encoded from them
    (e.g. a smaller bank, encoded once, in tests).
    """
    existing = ArtifactItem.objects.filter(image__version=version).count()
    if existing:
        return existing
    import codecs_adapter

    sources = images if images is not None else artifacts.screening_images()
    saved: list[str] = []
    try:
        rows = {}
        for name, rgb in sources.items():
            token = ScreeningImage._meta.get_field("token").get_default()
            path = default_storage.save(
                f"screening/{token}.png", ContentFile(codecs_adapter.png_bytes(rgb))
            )
            saved.append(path)
            rows[name] = ScreeningImage.objects.create(
                version=version, name=name, file=path, token=token
            )
        count = 0
        for item in items if items is not None else artifacts.build_items(sources):
            token = ArtifactItem._meta.get_field("token").get_default()
            path = default_storage.save(f"screening/{token}.png", ContentFile(item.png))
            saved.append(path)
            ArtifactItem.objects.create(
                image=rows[item.image],
                level=item.level,
                codec=item.codec,
                bpp=item.bpp,
                file=path,
                token=token,
            )
            count += 1
    except BaseException:
        for path in saved:
            default_storage.delete(path)
        raise
    return count
