"""Screening in Chromium: one rater passes into the comparisons, another is screened out."""

from __future__ import annotations

import re
from typing import Any

import pytest

from screening.models import ArtifactTrial, PlateItem
from studies.models import RaterSession, SessionStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _take_screening(page: Any, *, reads_plates: bool) -> None:
    """Answer plates and artifact items like a person with (or without) colour vision."""
    for _ in range(80):
        if "/colour/" in page.url:
            token = page.get_attribute("input[name=plate]", "value")
            plate = PlateItem.objects.get(token=token)
            # The plate is really there, drawn at its natural size.
            assert page.evaluate("() => document.querySelector('.plate img').naturalWidth") == 400
            page.fill("#plate-answer", plate.expected if reads_plates else "nothing")
            with page.expect_navigation():
                page.click("#plate-submit")
        elif "/artifacts/" in page.url:
            src = page.get_attribute("img[alt='Left image']", "src")
            match = re.search(r"/a/([0-9a-f]+)-l\.png", src or "")
            assert match is not None
            trial = ArtifactTrial.objects.get(token=match.group(1))
            key = "ArrowLeft" if trial.compressed_side == "left" else "ArrowRight"
            with page.expect_navigation():
                page.keyboard.press(key)
        else:
            return
    raise AssertionError(f"still screening at {page.url}")


def test_one_rater_passes_and_another_is_screened_out(
    chromium: Any, live_server: Any, make_study: Any, artifact_bank: int
) -> None:
    study = make_study(slug="screened", screening_required=True, screen_out_code="RETURN-IT")
    outcomes = {}
    for pid, reads in (("sees-colour", True), ("red-green", False)):
        context = chromium.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/r/{study.slug}/?PROLIFIC_PID={pid}&STUDY_ID=s&SESSION_ID=x")
        page.click("#consent")
        page.wait_for_url("**/screening/screened/display/")
        page.click("#check-display")
        page.wait_for_url(re.compile(r".*/screening/screened/colour/$"))
        _take_screening(page, reads_plates=reads)
        outcomes[pid] = page
        if reads:
            page.wait_for_url("**/r/screened/rate/")
            page.wait_for_selector("#viewer[data-state='ready']")
        else:
            page.wait_for_url("**/r/screened/done/")
            assert page.text_content("#completion-code") == "RETURN-IT"
            assert "return your submission" in page.text_content("main").lower()
            href = page.get_attribute("#return-to-platform", "href")
            assert href == "https://app.prolific.com/submissions/complete?cc=RETURN-IT"
        context.close()
    passed = RaterSession.objects.get(rater__external_id="sees-colour")
    failed = RaterSession.objects.get(rater__external_id="red-green")
    assert passed.is_admitted and passed.status == SessionStatus.ACTIVE
    assert failed.status == SessionStatus.SCREENED_OUT and not failed.is_admitted
