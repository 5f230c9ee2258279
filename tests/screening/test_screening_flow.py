"""Screening through the pages: the order of the tests, pass and fail, retakes, gating."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from django.test import Client

from screening.models import ArtifactTrial, PlateItem, ScreeningAttempt, ScreeningPolicy
from studies.models import RaterSession, SessionStatus, Stimulus, Study, Trial, Vote

DISPLAY = dict(
    device_pixel_ratio=1,
    viewport_width=1400,
    viewport_height=900,
    screen_width=1440,
    screen_height=900,
    color_depth=24,
)


@pytest.fixture
def screened(make_study: Any, artifact_bank: int) -> Study:
    return make_study(slug="screened", screening_required=True, screen_out_code="SCREEN-OUT")


def _enter(client: Client, slug: str, pid: str) -> Any:
    page = client.get(f"/r/{slug}/?PROLIFIC_PID={pid}&STUDY_ID=s&SESSION_ID=x")
    if page.status_code == 302:  # a returning participant resumes
        return page
    form = page.context["form"]
    return client.post(f"/r/{slug}/", {n: form[n].value() or "" for n in form.fields})


def _plate_token(page: Any) -> str:
    match = re.search(rb'name="plate" value="([^"]+)"', page.content)
    assert match is not None
    return match.group(1).decode()


def _screen(
    client: Client, slug: str, *, colour_right: bool = True, see_artifacts: bool = True
) -> str:
    """Answer every screening page as asked; returns where the rater ends up."""
    url = f"/screening/{slug}/"
    for _ in range(200):
        response = client.get(url)
        if response.status_code != 302 and "/display/" in url:
            response = client.post(url, DISPLAY)
        elif response.status_code != 302 and "/colour/" in url:
            plate = PlateItem.objects.get(token=_plate_token(response))
            answer = plate.expected if colour_right or plate.kind == "tritan" else "nothing"
            response = client.post(url, {"plate": plate.token, "answer": answer})
        elif response.status_code != 302 and "/artifacts/" in url:
            trial = ArtifactTrial.objects.get(token=response.context["trial"].token)
            right = see_artifacts or trial.level == 0
            side = (
                trial.compressed_side
                if right
                else ("left" if trial.compressed_side == "right" else "right")
            )
            response = client.post(url, {"position": trial.position, "answer": side})
        assert response.status_code == 302, (url, response.status_code)
        url = response["Location"]
        if not url.startswith("/screening/"):
            return url
    raise AssertionError("screening did not end")


def test_a_rater_with_normal_vision_passes_in_order(client: Client, screened: Study) -> None:
    _enter(client, screened.slug, "good")
    url = f"/screening/{screened.slug}/"
    assert client.get(url)["Location"] == f"/screening/{screened.slug}/display/"
    end = _screen(client, screened.slug)
    assert end == f"/r/{screened.slug}/rate/"
    session = RaterSession.objects.get(rater__external_id="good")
    assert session.is_admitted
    attempt = ScreeningAttempt.objects.get(rater=session.rater)
    assert attempt.plates.count() == 6 and all(p.correct for p in attempt.plates.all())
    assert attempt.artifact_threshold is not None and attempt.artifact_threshold >= 3
    trials = list(attempt.artifact_trials.all())
    assert 12 <= len(trials) <= 30
    assert all(t.shown_at and t.answered_at and t.answered_at >= t.shown_at for t in trials)


def test_a_wrong_red_green_plate_screens_the_rater_out(client: Client, screened: Study) -> None:
    _enter(client, screened.slug, "dichromat")
    end = _screen(client, screened.slug, colour_right=False)
    assert end == "https://app.prolific.com/submissions/complete?cc=SCREEN-OUT" or end.endswith(
        "/done/"
    )
    session = RaterSession.objects.get(rater__external_id="dichromat")
    assert session.status == SessionStatus.SCREENED_OUT
    done = client.get(f"/r/{screened.slug}/done/")
    assert b"SCREEN-OUT" in done.content
    assert b"return your submission" in done.content


def test_a_wrong_tritan_plate_is_forgiven_by_default_but_not_when_required(
    client: Client, make_study: Any, artifact_bank: int
) -> None:
    lenient = make_study(slug="lenient", screening_required=True)
    strict = make_study(slug="strict", screening_required=True)
    ScreeningPolicy.objects.create(study=strict, require_tritan=True)
    _enter(client, lenient.slug, "tritanope")
    # A person who misses only the blue-yellow plate.
    url = f"/screening/{lenient.slug}/"
    while url.startswith("/screening/"):
        response = client.get(url)
        if response.status_code == 200 and "/colour/" in url:
            plate = PlateItem.objects.get(token=_plate_token(response))
            answer = "nothing" if plate.kind == "tritan" else plate.expected
            response = client.post(url, {"plate": plate.token, "answer": answer})
        elif response.status_code == 200 and "/display/" in url:
            response = client.post(url, DISPLAY)
        elif response.status_code == 200:
            trial = ArtifactTrial.objects.get(token=response.context["trial"].token)
            response = client.post(
                url, {"position": trial.position, "answer": trial.compressed_side}
            )
        url = response["Location"]
    assert url == f"/r/{lenient.slug}/rate/"
    # The same person in a stricter study: judged on the stored answers, not retested.
    other = Client()
    _enter(other, strict.slug, "tritanope")
    assert _screen(other, strict.slug) != f"/r/{strict.slug}/rate/"
    assert RaterSession.objects.get(study=strict).status == SessionStatus.SCREENED_OUT
    assert PlateItem.objects.count() == 6


def test_a_screened_out_rater_cannot_retake_in_another_browser_or_study(
    client: Client, screened: Study, make_study: Any
) -> None:
    _enter(client, screened.slug, "retaker")
    _screen(client, screened.slug, colour_right=False)
    # Another browser, same Prolific id: the same ended session.
    other = Client()
    response = _enter(other, screened.slug, "retaker")
    assert response["Location"] == f"/r/{screened.slug}/done/"
    # Another study: no new plates, the stored failure decides at once.
    second = make_study(slug="second", screening_required=True)
    third = Client()
    _enter(third, second.slug, "retaker")
    third.post(f"/screening/{second.slug}/display/", DISPLAY)
    assert third.get(f"/screening/{second.slug}/")["Location"] == f"/r/{second.slug}/done/"
    assert RaterSession.objects.get(study=second).status == SessionStatus.SCREENED_OUT
    assert PlateItem.objects.count() == 6  # one attempt, never a second set of plates


def test_a_rater_who_sees_no_artifacts_is_screened_out(client: Client, screened: Study) -> None:
    _enter(client, screened.slug, "blind-to-blocks")
    _screen(client, screened.slug, see_artifacts=False)
    session = RaterSession.objects.get(rater__external_id="blind-to-blocks")
    assert session.status == SessionStatus.SCREENED_OUT
    attempt = ScreeningAttempt.objects.get(rater=session.rater)
    assert attempt.artifact_threshold is not None and attempt.artifact_threshold < 3
    assert attempt.artifact_threshold_bpp is not None


def test_every_comparison_endpoint_refuses_an_unscreened_session(
    client: Client, screened: Study
) -> None:
    _enter(client, screened.slug, "sneaky")
    session = RaterSession.objects.get(rater__external_id="sneaky")
    auth = {"Authorization": f"Bearer {session.token}"}
    assert client.get(f"/r/{screened.slug}/rate/")["Location"] == f"/screening/{screened.slug}/"
    assert client.get(f"/r/{screened.slug}/done/")["Location"] == f"/screening/{screened.slug}/"
    assert client.get(f"/api/v1/sessions/{session.token}/next", headers=auth).status_code == 403
    stimulus, other = Stimulus.objects.filter(
        condition__study=screened, source_image__name="astronaut", condition__kind="study"
    )[:2]
    planted = Trial.objects.create(
        session=session,
        position=0,
        source_image=stimulus.source_image,
        left=stimulus,
        right=other,
        crop_width=10,
        crop_height=10,
    )
    vote = {"choice": "left", "client_vote_id": str(uuid.uuid4()), "response_ms": 2000}
    response = client.post(
        f"/api/v1/trials/{planted.public_id}/vote",
        data=json.dumps(vote),
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 403
    assert not Vote.objects.exists()
    # Skipping ahead to a later screening step sends the rater back to the right one.
    assert client.get(f"/screening/{screened.slug}/artifacts/")["Location"] == (
        f"/screening/{screened.slug}/display/"
    )


def _strip_csrf(content: bytes) -> bytes:
    """The page without what changes on every request (CSRF token, CSP nonce)."""
    content = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)
    return re.sub(rb'nonce="[^"]+"', b"", content)


def test_answers_never_reach_the_browser(client: Client, screened: Study) -> None:
    _enter(client, screened.slug, "curious")
    client.post(f"/screening/{screened.slug}/display/", DISPLAY)
    url = f"/screening/{screened.slug}/colour/"
    page = client.get(url)
    plate = PlateItem.objects.get(token=_plate_token(page))
    # The page does not depend on the expected answer at all.
    PlateItem.objects.filter(pk=plate.pk).update(expected="424242")
    assert _strip_csrf(client.get(url).content) == _strip_csrf(page.content)
    image = client.get(f"/screening/p/{plate.token}.png")
    assert image["Content-Type"] == "image/png" and "Content-Disposition" not in image

    for item in PlateItem.objects.filter(attempt=plate.attempt):
        client.post(url, {"plate": item.token, "answer": item.expected})
    url = f"/screening/{screened.slug}/artifacts/"
    page = client.get(url)
    trial = ArtifactTrial.objects.get(token=page.context["trial"].token)
    flipped = "left" if trial.compressed_side == "right" else "right"
    ArtifactTrial.objects.filter(pk=trial.pk).update(compressed_side=flipped)
    assert _strip_csrf(client.get(url).content) == _strip_csrf(page.content)
    left = client.get(f"/screening/a/{trial.token}-l.png")
    right = client.get(f"/screening/a/{trial.token}-r.png")
    assert left["Content-Length"] == right["Content-Length"]  # sizes tell nothing
    assert left.content != right.content


def test_the_researcher_sees_screening_statistics(
    client: Client, screened: Study, owner: Any, other_researcher: Any
) -> None:
    _enter(client, screened.slug, "one")
    _screen(client, screened.slug)
    second = Client()
    _enter(second, screened.slug, "two")
    _screen(second, screened.slug, colour_right=False)
    client.force_login(other_researcher)
    assert client.get(f"/screening/{screened.slug}/stats/").status_code == 404
    client.force_login(owner)
    page = client.get(f"/screening/{screened.slug}/stats/")
    stats = page.context["stats"]
    assert (stats["admitted"], stats["screened_out"]) == (1, 1)
    assert (stats["colour_passed"], stats["colour_taken"]) == (1, 2)
    assert stats["artifacts_taken"] == 1  # the second stopped at the plates
    assert stats["device_pixel_ratios"] == [(1.0, 2)]
