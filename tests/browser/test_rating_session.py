"""A person completes a rating session in Chromium, from the Prolific link to the code."""

from __future__ import annotations

from typing import Any

import pytest

from screening.models import ScreeningPolicy
from studies.models import RaterSession, Trial, Vote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete"
MIN_VIEW_MS = 1200


def _wait_for_new_trial(page: Any, previous: str | None) -> str:
    page.wait_for_function(
        "prev => { const v = document.getElementById('viewer');"
        " return v.dataset.state === 'ready' && v.dataset.trial && v.dataset.trial !== prev; }",
        arg=previous,
    )
    return str(page.get_attribute("#viewer", "data-trial"))


def test_a_rater_completes_a_session_with_keyboard_and_mouse(
    page: Any, live_server: Any, make_study: Any
) -> None:
    study = make_study(slug="browser", screening_required=True, min_view_ms=MIN_VIEW_MS)
    # Here only the display check; tests/browser/test_screening.py takes the whole screening.
    ScreeningPolicy.objects.create(study=study, require_colour=False, require_artifacts=False)
    # Prolific is not reachable from here: answer for it.
    page.route(f"{PROLIFIC_COMPLETE}**", lambda route: route.fulfill(body="Prolific received it"))

    page.goto(f"{live_server.url}/r/{study.slug}/?PROLIFIC_PID=pp-1&STUDY_ID=s&SESSION_ID=x")
    page.click("#consent")
    page.wait_for_url("**/screening/browser/display/")
    page.click("#check-display")
    page.wait_for_url("**/r/browser/rate/")

    trial_id = _wait_for_new_trial(page, None)
    # One image pixel on one device pixel, the crop framed exactly.
    geometry = page.evaluate(
        "() => [...document.querySelectorAll('[data-image]')].map(img => ["
        " img.naturalWidth, img.getBoundingClientRect().width * devicePixelRatio,"
        " img.parentElement.getBoundingClientRect().width * devicePixelRatio])"
    )
    assert geometry == [[96, 96, 96]] * 3

    # A choice before the minimum viewing time is ignored.
    page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(300)
    assert page.get_attribute("#viewer", "data-trial") == trial_id
    assert not Vote.objects.exists()

    inputs = ["ArrowLeft", "click-right", "2", "click-left"]
    chosen = []
    for step, how in enumerate(inputs):
        if step > 0:
            trial_id = _wait_for_new_trial(page, trial_id)
        progress = page.text_content("[data-status]")
        assert progress == f"Pair {step + 1} of 4"
        page.wait_for_selector("[data-choice=left]:not([disabled])")
        if how.startswith("click-"):
            page.click(f"[data-choice={how.removeprefix('click-')}]")
        else:
            page.keyboard.press(how)
        chosen.append((trial_id, "left" if how in {"ArrowLeft", "click-left", "1"} else "right"))
        if step < len(inputs) - 1:
            page.wait_for_function(
                "prev => document.getElementById('viewer').dataset.trial !== prev", arg=trial_id
            )

    page.wait_for_url(f"{PROLIFIC_COMPLETE}?cc=SMALL-DONE")
    session = RaterSession.objects.get(rater__external_id="pp-1")
    assert session.status == RaterSession.Status.COMPLETED
    stored = {
        (str(v.trial.public_id), v.choice)
        for v in Vote.objects.filter(trial__session=session).select_related("trial")
    }
    assert stored == set(chosen)
    assert Trial.objects.filter(session=session).count() == 4
    for vote in Vote.objects.all():
        assert vote.response_ms >= MIN_VIEW_MS


def test_a_reload_resumes_on_the_same_trial(page: Any, live_server: Any, make_study: Any) -> None:
    study = make_study(slug="reload")
    page.goto(f"{live_server.url}/r/{study.slug}/?participant=reloader")
    page.click("#consent")
    first = _wait_for_new_trial(page, None)
    page.reload()
    assert _wait_for_new_trial(page, None) == first
    assert Trial.objects.count() == 2  # the one on screen and the one loaded ahead
