"""The display check: the server decides whether the study's images fit 1:1."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from screening.models import DisplayCheck, ScreeningPolicy
from screening.rules import (
    LAYOUT_EXTRA_HEIGHT_CSS,
    LAYOUT_EXTRA_WIDTH_CSS,
    DisplayReport,
    judge_display,
    required_viewport,
)
from studies.models import RaterSession


def _report(**changes: Any) -> DisplayReport:
    values: dict[str, Any] = dict(
        device_pixel_ratio=1.0,
        viewport_width=1400,
        viewport_height=800,
        screen_width=1440,
        screen_height=900,
        color_depth=24,
    )
    values.update(changes)
    return DisplayReport(**values)


def test_three_panels_of_the_image_plus_the_layout_must_fit() -> None:
    assert required_viewport(image_width=384, image_height=384, device_pixel_ratio=1.0) == (
        3 * 384 + LAYOUT_EXTRA_WIDTH_CSS,
        384 + LAYOUT_EXTRA_HEIGHT_CSS,
    )
    # On a 2x display an image pixel is half a CSS pixel.
    assert required_viewport(image_width=384, image_height=384, device_pixel_ratio=2.0) == (
        3 * 192 + LAYOUT_EXTRA_WIDTH_CSS,
        192 + LAYOUT_EXTRA_HEIGHT_CSS,
    )


@pytest.mark.parametrize(
    ("changes", "accepted", "reason"),
    [
        ({}, True, ""),
        ({"viewport_width": 1000}, False, "Maximise the window"),
        ({"viewport_height": 500}, False, "Maximise the window"),
        ({"viewport_width": 800, "device_pixel_ratio": 2.0}, True, ""),
        ({"color_depth": 16}, False, "16-bit colour"),
    ],
)
def test_judge_display(changes: dict[str, Any], accepted: bool, reason: str) -> None:
    verdict = judge_display(_report(**changes), shown_width=384, shown_height=384)
    assert verdict.accepted is accepted
    assert reason in verdict.reason


def _session(client: Client, slug: str) -> RaterSession:
    page = client.get(f"/r/{slug}/?participant=viewer-1")
    form = page.context["form"]
    client.post(f"/r/{slug}/", {name: form[name].value() or "" for name in form.fields})
    return RaterSession.objects.get(rater__external_id="viewer-1")


def _post(client: Client, slug: str, report: DisplayReport) -> Any:
    data = {k: v for k, v in report.__dict__.items() if v is not None}
    return client.post(f"/screening/{slug}/display/", data)


def test_a_small_window_is_refused_with_instructions_and_can_check_again(
    client: Client, make_study: Any
) -> None:
    study = make_study(slug="screened", screening_required=True, crop_size=384)
    # Only the display check: the colour and artifact tests are off here.
    ScreeningPolicy.objects.create(study=study, require_colour=False, require_artifacts=False)
    session = _session(client, study.slug)
    # The small study's images are 96 px: 3*96+64 = 352 CSS px wide are needed.
    refused = _post(client, study.slug, _report(viewport_width=300))
    assert refused.status_code == 200
    assert b"Maximise the window" in refused.content
    session.refresh_from_db()
    assert session.screening_passed_at is None
    accepted = _post(client, study.slug, _report(viewport_width=400))
    assert accepted.status_code == 302
    assert accepted["Location"] == f"/screening/{study.slug}/"
    assert client.get(accepted["Location"])["Location"] == f"/r/{study.slug}/rate/"
    session.refresh_from_db()
    assert session.screening_passed_at is not None
    assert list(DisplayCheck.objects.order_by("created_at").values_list("accepted", flat=True)) == [
        False,
        True,
    ]


def test_the_artifact_test_needs_room_for_its_pair(client: Client, make_study: Any) -> None:
    study = make_study(slug="screened", screening_required=True)
    _session(client, study.slug)
    # Two 256-pixel items side by side need 2*256+64 = 576 CSS px.
    refused = _post(client, study.slug, _report(viewport_width=500))
    assert b"576" in refused.content
    assert _post(client, study.slug, _report(viewport_width=600)).status_code == 302


def test_an_incomplete_report_records_nothing(client: Client, make_study: Any) -> None:
    study = make_study(slug="screened", screening_required=True)
    _session(client, study.slug)
    response = client.post(f"/screening/{study.slug}/display/", {"device_pixel_ratio": "1"})
    assert response.status_code == 200
    assert b"incomplete" in response.content
    assert not DisplayCheck.objects.exists()


def test_without_a_session_the_check_sends_the_rater_to_the_entry(
    client: Client, make_study: Any
) -> None:
    study = make_study(slug="screened", screening_required=True)
    response = client.get(f"/screening/{study.slug}/display/")
    assert response["Location"] == f"/r/{study.slug}/"
