"""The database itself refuses records that break the study's invariants."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from studies import services
from studies.models import Rater, RaterSession, Stimulus, Trial, Vote


@pytest.fixture
def issued_trial(study: Any) -> Trial:
    session, _ = services.rater_session_start(study=study, platform="direct", participant="p1")
    trial = services.trial_next(session=session)
    assert trial is not None
    return trial


def _violates(create: Any) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_a_trial_has_one_vote_at_most(issued_trial: Trial) -> None:
    Vote.objects.create(
        trial=issued_trial, client_vote_id=uuid.uuid4(), choice="left", response_ms=5
    )
    assert _violates(
        lambda: Vote.objects.create(
            trial=issued_trial, client_vote_id=uuid.uuid4(), choice="right", response_ms=5
        )
    )


def test_a_client_vote_id_is_used_once(study: Any, issued_trial: Trial) -> None:
    vote_id = uuid.uuid4()
    Vote.objects.create(trial=issued_trial, client_vote_id=vote_id, choice="left", response_ms=5)
    session = issued_trial.session
    second = Trial.objects.create(
        session=session,
        position=99,
        source_image=issued_trial.source_image,
        left=issued_trial.right,
        right=issued_trial.left,
        crop_width=10,
        crop_height=10,
    )
    assert _violates(
        lambda: Vote.objects.create(
            trial=second, client_vote_id=vote_id, choice="left", response_ms=5
        )
    )


def test_a_vote_choice_outside_the_choices_is_refused(issued_trial: Trial) -> None:
    assert _violates(
        lambda: Vote.objects.create(
            trial=issued_trial, client_vote_id=uuid.uuid4(), choice="a", response_ms=5
        )
    )


def test_a_trial_needs_two_different_stimuli(issued_trial: Trial) -> None:
    assert _violates(
        lambda: Trial.objects.create(
            session=issued_trial.session,
            position=7,
            source_image=issued_trial.source_image,
            left=issued_trial.left,
            right=issued_trial.left,
            crop_width=10,
            crop_height=10,
        )
    )


def test_trial_positions_are_unique_in_a_session(issued_trial: Trial) -> None:
    assert _violates(
        lambda: Trial.objects.create(
            session=issued_trial.session,
            position=issued_trial.position,
            source_image=issued_trial.source_image,
            left=issued_trial.right,
            right=issued_trial.left,
            crop_width=10,
            crop_height=10,
        )
    )


@pytest.mark.parametrize(("field", "value"), [("bpp", 0.0), ("bpp", -1.0), ("bitstream_bytes", 0)])
def test_a_stimulus_must_have_positive_size_and_rate(study: Any, field: str, value: float) -> None:
    stimulus = Stimulus.objects.filter(condition__study=study, condition__kind="study").first()
    assert stimulus is not None
    assert _violates(lambda: Stimulus.objects.filter(pk=stimulus.pk).update(**{field: value}))


def test_one_session_per_rater_and_study(study: Any) -> None:
    rater = Rater.objects.create(platform="prolific", external_id="abc")
    RaterSession.objects.create(study=study, rater=rater, trials_total=3)
    assert _violates(lambda: RaterSession.objects.create(study=study, rater=rater, trials_total=3))


def test_a_rater_identity_is_unique_per_platform(db: None) -> None:
    Rater.objects.create(platform="prolific", external_id="abc")
    Rater.objects.create(platform="mturk", external_id="abc")
    assert _violates(lambda: Rater.objects.create(platform="prolific", external_id="abc"))


def test_a_completed_session_has_a_completion_time(study: Any) -> None:
    rater = Rater.objects.create(platform="direct", external_id="x")
    session = RaterSession.objects.create(study=study, rater=rater, trials_total=3)
    assert _violates(lambda: RaterSession.objects.filter(pk=session.pk).update(status="completed"))


def test_stimuli_record_their_codec_library_version_and_settings(study: Any) -> None:
    stimulus = Stimulus.objects.filter(condition__codec="jpeg", condition__kind="study").first()
    assert stimulus is not None
    assert stimulus.codec_library and stimulus.codec_version
    assert stimulus.settings.get("quality") in {20, 60}
    assert stimulus.bpp == pytest.approx(
        stimulus.bitstream_bytes * 8 / (stimulus.source_image.width * stimulus.source_image.height)
    )
