"""The viewer in Chromium: flip modes, minimum flips, practice, the offline vote queue."""

from __future__ import annotations

from typing import Any

import pytest

from studies.models import RaterSession, Vote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _start(page: Any, live_server: Any, slug: str, participant: str) -> None:
    page.goto(f"{live_server.url}/r/{slug}/?participant={participant}")
    page.click("#consent")
    page.wait_for_url(f"**/r/{slug}/rate/")


def _wait_ready(page: Any, previous: str | None = None) -> str:
    page.wait_for_function(
        "prev => { const v = document.getElementById('viewer');"
        " return v.dataset.state === 'ready' && v.dataset.trial !== prev; }",
        arg=previous,
    )
    return str(page.get_attribute("#viewer", "data-trial"))


def _wait_sent(page: Any) -> None:
    """Until the browser's vote queue is empty (every vote acknowledged)."""
    page.wait_for_function(
        "() => Object.keys(localStorage).filter(k => k.startsWith('codec-arena:votes:'))"
        ".every(k => JSON.parse(localStorage.getItem(k)).length === 0)"
    )


def _queued(page: Any) -> int:
    return int(
        page.evaluate(
            "() => Object.keys(localStorage).filter(k => k.startsWith('codec-arena:votes:'))"
            ".reduce((n, k) => n + JSON.parse(localStorage.getItem(k)).length, 0)"
        )
    )


@pytest.mark.parametrize(
    ("mode", "order"),
    [("stacked", ["A", "B", "A", "B"]), ("flip", ["Original", "A", "B", "Original"])],
)
def test_flip_modes_flip_by_key_and_need_the_minimum_flips(
    page: Any, live_server: Any, make_study: Any, mode: str, order: list[str]
) -> None:
    study = make_study(slug=f"flip-{mode}", display_mode=mode, min_flips=3, trials_per_session=2)
    _start(page, live_server, study.slug, f"flipper-{mode}")
    trial = _wait_ready(page)
    labels = [page.text_content("[data-flip-label]")]
    for key in ("Space", "f", "Space"):
        page.wait_for_timeout(50)
        assert page.get_attribute("#viewer", "data-ready") == "0"  # too few flips yet
        page.keyboard.press("ArrowRight")  # ignored: too few flips
        page.keyboard.press(key)
        labels.append(page.text_content("[data-flip-label]"))
    assert labels == order
    # Only the image of the current view is visible, at 1:1.
    visible = page.evaluate(
        "() => [...document.querySelectorAll('[data-flip] img')]"
        ".filter(i => getComputedStyle(i).visibility === 'visible').map(i => i.dataset.image)"
    )
    assert len(visible) == 1
    assert not Vote.objects.exists()
    page.wait_for_selector("#viewer[data-ready='1']")
    page.keyboard.press("ArrowRight")
    _wait_ready(page, trial)
    _wait_sent(page)
    vote = Vote.objects.get()
    assert (vote.choice, vote.flips) == ("right", 3)


def test_practice_trials_give_feedback(page: Any, live_server: Any, make_study: Any) -> None:
    study = make_study(slug="practice", practice_trials=1, trials_per_session=1)
    _start(page, live_server, study.slug, "learner")
    first = _wait_ready(page)
    assert page.is_visible("[data-practice]")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "() => /Right:|Not quite:/.test(document.querySelector('[data-status]').textContent)"
    )
    second = _wait_ready(page, first)
    assert not page.is_visible("[data-practice]")
    assert page.text_content("[data-status]") == "Pair 1 of 1"
    assert second != first


def test_votes_made_offline_are_kept_and_sent_once_on_reconnect(
    page: Any, live_server: Any, make_study: Any
) -> None:
    study = make_study(slug="offline", trials_per_session=3, completion_code="OFF-DONE")
    _start(page, live_server, study.slug, "traveller")
    first = _wait_ready(page)

    page.context.set_offline(True)
    page.keyboard.press("ArrowLeft")
    # The next trial was loaded ahead, so the rater goes on while offline.
    second = _wait_ready(page, first)
    page.wait_for_function(
        "() => document.querySelector('[data-status]').textContent.includes('Connection problem')"
    )
    assert _queued(page) == 1
    assert not Vote.objects.exists()

    page.context.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    _wait_sent(page)
    assert Vote.objects.count() == 1
    assert str(Vote.objects.get().trial.public_id) == first

    # The last vote: offline, the page must not leave before the server has it.
    page.keyboard.press("ArrowRight")
    last = _wait_ready(page, second)
    _wait_sent(page)
    page.context.set_offline(True)
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(1500)
    assert "/rate/" in page.url
    assert Vote.objects.count() == 2
    assert _queued(page) == 1
    page.context.set_offline(False)
    page.wait_for_url("**/r/offline/done/")
    assert page.text_content("#completion-code") == "OFF-DONE"
    session = RaterSession.objects.get(rater__external_id="traveller")
    assert session.status == RaterSession.Status.COMPLETED
    assert sorted(str(v.trial.public_id) for v in Vote.objects.all()) == sorted(
        [first, second, last]
    )


def test_images_are_pixel_exact_on_a_high_density_display(
    chromium: Any, live_server: Any, make_study: Any
) -> None:
    study = make_study(slug="retina")
    context = chromium.new_context(viewport={"width": 900, "height": 700}, device_scale_factor=2)
    page = context.new_page()
    try:
        _start(page, live_server, study.slug, "retina-user")
        _wait_ready(page)
        geometry = page.evaluate(
            "() => [devicePixelRatio, ...[...document.querySelectorAll('[data-image]')].map(img =>"
            " [img.naturalWidth, img.getBoundingClientRect().width,"
            " img.parentElement.getBoundingClientRect().width])]"
        )
    finally:
        context.close()
    assert geometry[0] == 2
    # 96 image pixels = 48 CSS pixels = 96 device pixels.
    assert geometry[1:] == [[96, 48, 48]] * 3


def test_a_vote_refused_by_the_rate_limit_is_kept_and_sent_again_with_its_id(
    page: Any, live_server: Any, make_study: Any, settings: Any, monkeypatch: Any
) -> None:
    from studies import ratelimits

    window = ratelimits.WINDOW_SECONDS
    clock = {"at": 1_000 * window + window - 0.5}  # half a second before a window ends
    monkeypatch.setattr(ratelimits, "now", lambda: clock["at"])
    settings.RATER_API_RATE_PER_SESSION = 1  # the viewer's first `next`, then nothing
    settings.RATER_API_RATE_PER_ADDRESS = 0
    study = make_study(slug="limited", trials_per_session=3)
    _start(page, live_server, study.slug, "hasty")
    first = _wait_ready(page)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "() => document.querySelector('[data-status]').textContent.includes('busy')"
    )
    queued = page.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('codec-arena:votes:'))"
        ".flatMap(k => JSON.parse(localStorage.getItem(k)))"
    )
    assert len(queued) == 1 and queued[0]["trial"] == first
    assert not Vote.objects.exists()
    clock["at"] += 1  # the next window: the viewer's retry (after Retry-After: 1) goes through
    _wait_sent(page)
    vote = Vote.objects.get()
    assert str(vote.client_vote_id) == queued[0]["body"]["client_vote_id"]
    assert str(vote.trial.public_id) == first
