"""Golden and practice trials, the lookahead trial, minimum time and flips, MTurk."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client

from studies import selectors, services
from studies.models import ConditionKind, RaterSession, Study, Trial, Vote


def _start(client: Client, slug: str, participant: str = "p1") -> str:
    response = client.post(
        f"/api/v1/studies/{slug}/sessions",
        data=json.dumps({"participant": participant, "platform": "prolific"}),
        content_type="application/json",
    )
    assert response.status_code == 201
    return str(response.json()["session"])


def _next(client: Client, token: str) -> Any:
    return client.get(
        f"/api/v1/sessions/{token}/next", headers={"Authorization": f"Bearer {token}"}
    )


def _vote(client: Client, token: str, trial: str, **body: Any) -> Any:
    payload = {"choice": "left", "client_vote_id": str(uuid.uuid4()), "response_ms": 1500}
    payload.update(body)
    return client.post(
        f"/api/v1/trials/{trial}/vote",
        data=json.dumps(payload),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def _answer(trial: Trial, *, correct: bool = True) -> str:
    """A rater who picks the original in checks (or not), and left otherwise."""
    answer = trial.golden_answer
    if answer is None:
        return "left"
    return answer if correct else ("right" if answer == "left" else "left")


def test_next_issues_one_trial_ahead_and_no_more(client: Client, study: Study) -> None:
    token = _start(client, study.slug)
    body = _next(client, token).json()
    assert body["next"]["trial"] != body["trial"]
    assert set(body["next"]["images"]) == {"reference", "left", "right"}
    assert body["next"]["progress"] == {"done": 1, "total": 4}
    _next(client, token)
    assert Trial.objects.count() == 2  # asking again issues nothing new


def test_a_choice_before_the_minimum_viewing_time_is_refused(
    client: Client, make_study: Any
) -> None:
    slow = make_study(slug="slow", min_view_ms=1000)
    token = _start(client, slow.slug)
    trial = _next(client, token).json()["trial"]
    response = _vote(client, token, trial, response_ms=400)
    assert response.status_code == 400
    assert "minimum viewing time of 1000 ms" in response.json()["error"]
    assert _vote(client, token, trial, response_ms=1000).status_code == 201


@pytest.mark.parametrize("mode", ["stacked", "flip"])
def test_flip_modes_require_the_minimum_flips(client: Client, make_study: Any, mode: str) -> None:
    flipping = make_study(slug=f"m-{mode}", display_mode=mode, min_flips=3)
    token = _start(client, flipping.slug)
    body = _next(client, token).json()
    assert (body["mode"], body["min_flips"]) == (mode, 3)
    response = _vote(client, token, body["trial"], flips=2)
    assert response.status_code == 400
    assert "flips 2 is below the 3 flips" in response.json()["error"]
    assert _vote(client, token, body["trial"], flips=3).status_code == 201
    assert Vote.objects.get().flips == 3


def test_side_by_side_needs_no_flips(client: Client, make_study: Any) -> None:
    study = make_study(slug="sbs", min_flips=3)
    token = _start(client, study.slug)
    assert _next(client, token).json()["min_flips"] == 0
    assert _vote(client, token, _next(client, token).json()["trial"], flips=0).status_code == 201


def test_practice_trials_come_first_with_feedback_and_are_never_exported(
    client: Client, make_study: Any
) -> None:
    study = make_study(slug="practice", practice_trials=2)
    token = _start(client, study.slug)
    session = RaterSession.objects.get(token=token)
    for _ in range(2):
        body = _next(client, token).json()
        assert body["practice"] is True
        assert body["progress"] == {"done": 0, "total": 4}
        trial = Trial.objects.select_related("left__condition").get(public_id=body["trial"])
        assert {trial.left.condition.kind, trial.right.condition.kind} == {
            ConditionKind.GOLDEN_REFERENCE,
            ConditionKind.GOLDEN_DEGRADED,
        }
        wrong = _vote(client, token, body["trial"], choice=_answer(trial, correct=False))
        assert wrong.json()["correct"] is False
    body = _next(client, token).json()
    assert body["practice"] is False
    assert "correct" not in _vote(client, token, body["trial"]).json()
    # Two wrong practice answers end nothing and count for nothing.
    session.refresh_from_db()
    assert session.status == RaterSession.Status.ACTIVE
    assert len(selectors.votes_frame(study)) == 1


def test_golden_trials_are_the_original_against_a_degraded_version(make_study: Any) -> None:
    study = make_study(slug="golden", golden_rate=0.25, trials_per_session=8)
    session, _ = services.rater_session_start(study=study, platform="direct", participant="g")
    golden = services.rating.golden_positions(session)
    assert len(golden) == 2 and 0 not in golden
    seen = []
    while (trial := services.trial_next(session=session)) is not None:
        seen.append(trial)
        services.vote_record(
            session=session,
            trial_id=trial.public_id,
            choice=_answer(trial),
            client_vote_id=uuid.uuid4(),
            response_ms=900,
            flips=0,
        )
    assert sorted(t.position for t in seen if t.is_golden) == sorted(golden)
    for trial in seen:
        kinds = {trial.left.condition.kind, trial.right.condition.kind}
        if trial.is_golden:
            assert kinds == {ConditionKind.GOLDEN_REFERENCE, ConditionKind.GOLDEN_DEGRADED}
            assert trial.left.source_image_id == trial.right.source_image_id
        else:
            assert kinds == {ConditionKind.STUDY}
    session.refresh_from_db()
    assert session.status == RaterSession.Status.COMPLETED
    votes = selectors.votes_frame(study)
    assert votes["golden"].tolist().count(1) == 2
    assert set(selectors.conditions_frame(study)["condition"]) == {
        "jpeg-r1",
        "jpeg-r2",
        "webp-r1",
        "webp-r2",
    }


def test_one_failed_golden_trial_is_forgiven_and_two_end_the_session(
    client: Client, make_study: Any
) -> None:
    study = make_study(
        slug="attention",
        golden_rate=0.5,
        trials_per_session=8,
        failed_attention_code="FAILED-CHECKS",
    )
    token = _start(client, study.slug)
    session = RaterSession.objects.get(token=token)
    failures = 0
    while True:
        body = _next(client, token).json()
        if body.get("finished"):
            break
        trial = Trial.objects.select_related("left__condition").get(public_id=body["trial"])
        assert (
            _vote(client, token, body["trial"], choice=_answer(trial, correct=False)).status_code
            == 201
        )
        failures += trial.is_golden
        session.refresh_from_db()
        assert session.has_ended == (failures >= 2)
    assert body == {
        "finished": True,
        "ended": "failed-attention",
        "completion_url": "https://app.prolific.com/submissions/complete?cc=FAILED-CHECKS",
    }
    assert failures == 2
    assert Vote.objects.filter(trial__session=session).count() < 8


def test_sides_are_balanced_per_rater(make_study: Any) -> None:
    study = make_study(slug="sides", trials_per_session=12)
    session, _ = services.rater_session_start(study=study, platform="direct", participant="s")
    balance: dict[str, int] = {}
    while (trial := services.trial_next(session=session)) is not None:
        balance[trial.left.condition.name] = balance.get(trial.left.condition.name, 0) + 1
        balance[trial.right.condition.name] = balance.get(trial.right.condition.name, 0) - 1
        services.vote_record(
            session=session,
            trial_id=trial.public_id,
            choice="left",
            client_vote_id=uuid.uuid4(),
            response_ms=900,
            flips=0,
        )
    # 12 pairs over 4 conditions: each condition 6 times, as often left as right.
    assert all(abs(b) <= 1 for b in balance.values()), balance


# --- Mechanical Turk -------------------------------------------------------------

MTURK = "?assignmentId=A1&hitId=H1&workerId=W1&turkSubmitTo=https://workersandbox.mturk.com"


def test_an_mturk_preview_shows_the_task_but_starts_nothing(client: Client, study: Study) -> None:
    page = client.get(f"/r/{study.slug}/?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1")
    assert page.status_code == 200
    assert b"Accept the HIT" in page.content
    assert b'id="consent"' not in page.content
    assert not RaterSession.objects.exists()


def test_an_mturk_worker_returns_the_assignment_at_the_end(client: Client, study: Study) -> None:
    page = client.get(f"/r/{study.slug}/{MTURK}")
    form = page.context["form"]
    response = client.post(f"/r/{study.slug}/", {n: form[n].value() or "" for n in form.fields})
    assert response.status_code == 302
    session = RaterSession.objects.get()
    assert (session.rater.platform, session.rater.external_id) == ("mturk", "W1")
    assert session.recruitment["turk_submit_to"] == "https://workersandbox.mturk.com"
    while (trial := services.trial_next(session=session)) is not None:
        services.vote_record(
            session=session,
            trial_id=trial.public_id,
            choice="left",
            client_vote_id=uuid.uuid4(),
            response_ms=900,
            flips=0,
        )
    done = client.get(f"/r/{study.slug}/done/")
    assert b'action="https://workersandbox.mturk.com/mturk/externalSubmit"' in done.content
    assert b'name="assignmentId" value="A1"' in done.content


def test_a_foreign_turk_submit_address_is_refused(client: Client, study: Study) -> None:
    query = MTURK.replace("https://workersandbox.mturk.com", "https://evil.example")
    page = client.get(f"/r/{study.slug}/{query}")
    form = page.context["form"]
    response = client.post(f"/r/{study.slug}/", {n: form[n].value() or "" for n in form.fields})
    assert response.status_code == 200
    assert b"turkSubmitTo must be one of" in response.content
    assert not RaterSession.objects.exists()


def test_rater_pages_may_be_framed_by_mturk_only(client: Client, study: Study, owner: Any) -> None:
    page = client.get(f"/r/{study.slug}/{MTURK}")
    assert "X-Frame-Options" not in page
    policy = page["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://www.mturk.com https://workersandbox.mturk.com" in policy
    assert "form-action 'self' https://www.mturk.com https://workersandbox.mturk.com" in policy
    client.force_login(owner)
    researcher_page = client.get(f"/studies/{study.slug}/")
    assert researcher_page["X-Frame-Options"] == "DENY"
    directives = dict(
        d.split(" ", 1) for d in researcher_page["Content-Security-Policy"].split("; ")
    )
    assert directives["frame-ancestors"] == "'self'"
    assert directives["form-action"] == "'self'"
