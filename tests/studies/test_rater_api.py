"""The rater JSON API: every status it promises (docs/api.md)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client

from studies.models import RaterSession, Study, Trial, Vote


def _start(client: Client, slug: str, participant: str = "p1", **extra: str) -> Any:
    return client.post(
        f"/api/v1/studies/{slug}/sessions",
        data=json.dumps({"participant": participant, **extra}),
        content_type="application/json",
    )


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _next(client: Client, token: str) -> Any:
    return client.get(f"/api/v1/sessions/{token}/next", headers=_auth(token))


def _vote(client: Client, token: str, trial: str, **body: Any) -> Any:
    payload = {
        "choice": "left",
        "client_vote_id": str(uuid.uuid4()),
        "response_ms": 1500,
        "flips": 0,
    }
    payload.update(body)
    return client.post(
        f"/api/v1/trials/{trial}/vote",
        data=json.dumps(payload),
        content_type="application/json",
        headers=_auth(token),
    )


@pytest.fixture
def token(client: Client, study: Study) -> str:
    response = _start(client, study.slug, platform="prolific", study_id="S1", session_id="X1")
    assert response.status_code == 201
    return str(response.json()["session"])


def test_starting_a_session_twice_resumes_it(client: Client, study: Study, token: str) -> None:
    again = _start(client, study.slug, platform="prolific")
    assert again.status_code == 200
    assert again.json()["session"] == token
    session = RaterSession.objects.get(token=token)
    assert session.rater.external_id == "p1"
    assert session.recruitment == {"study_id": "S1", "session_id": "X1"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "JSON object"),
        ("[1, 2]", "JSON object"),
        ("{}", "participant"),
        ('{"participant": "p", "platform": "myspace"}', "platform"),
    ],
)
def test_a_malformed_session_request_is_refused_with_a_reason(
    client: Client, study: Study, body: str, message: str
) -> None:
    response = client.post(
        f"/api/v1/studies/{study.slug}/sessions", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not RaterSession.objects.exists()


def test_a_closed_study_takes_no_new_raters(client: Client, study: Study) -> None:
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    response = _start(client, study.slug)
    assert response.status_code == 403
    assert "closed" in response.json()["error"]


def test_an_unknown_study_is_404(client: Client, db: None) -> None:
    assert _start(client, "nope").status_code == 404


def test_next_needs_the_bearer_token(client: Client, token: str) -> None:
    assert client.get(f"/api/v1/sessions/{token}/next").status_code == 401
    wrong = client.get(f"/api/v1/sessions/{token}/next", headers=_auth("someone-else"))
    assert wrong.status_code == 401


def test_next_describes_a_trial_of_one_image(client: Client, token: str) -> None:
    response = _next(client, token)
    assert response.status_code == 200
    body = response.json()
    assert set(body["images"]) == {"reference", "left", "right"}
    assert body["progress"] == {"done": 0, "total": 4}
    trial = Trial.objects.get(public_id=body["trial"])
    assert trial.left.source_image_id == trial.right.source_image_id == trial.source_image_id
    assert trial.left.condition_id != trial.right.condition_id
    assert body["images"]["left"] == f"/i/{trial.left.token}.png"
    assert body["crop"] == {"x": 0, "y": 0, "width": 96, "height": 96}


def test_next_returns_the_same_trial_until_it_is_answered(client: Client, token: str) -> None:
    first = _next(client, token).json()["trial"]
    assert _next(client, token).json()["trial"] == first
    assert _vote(client, token, first).status_code == 201
    assert _next(client, token).json()["trial"] != first


def test_a_vote_is_stored_once_and_a_retry_returns_the_same_answer(
    client: Client, token: str
) -> None:
    trial = _next(client, token).json()["trial"]
    vote_id = str(uuid.uuid4())
    first = _vote(client, token, trial, client_vote_id=vote_id, choice="right", response_ms=2100)
    retry = _vote(client, token, trial, client_vote_id=vote_id, choice="right", response_ms=2100)
    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.json() == first.json()
    vote = Vote.objects.get()
    assert (vote.choice, vote.response_ms, str(vote.client_vote_id)) == ("right", 2100, vote_id)


def test_a_different_second_vote_on_a_trial_is_a_conflict(client: Client, token: str) -> None:
    trial = _next(client, token).json()["trial"]
    assert _vote(client, token, trial, choice="left").status_code == 201
    second = _vote(client, token, trial, choice="right")
    assert second.status_code == 409
    assert Vote.objects.get().choice == "left"


def test_reusing_a_vote_id_for_another_trial_is_a_conflict(client: Client, token: str) -> None:
    vote_id = str(uuid.uuid4())
    first = _next(client, token).json()["trial"]
    assert _vote(client, token, first, client_vote_id=vote_id).status_code == 201
    second = _next(client, token).json()["trial"]
    assert _vote(client, token, second, client_vote_id=vote_id).status_code == 409
    assert Vote.objects.count() == 1


def test_a_trial_of_another_session_is_forbidden(client: Client, study: Study, token: str) -> None:
    trial = _next(client, token).json()["trial"]
    other = _start(client, study.slug, participant="p2").json()["session"]
    response = _vote(client, other, trial)
    assert response.status_code == 403
    assert not Vote.objects.exists()


def test_an_unknown_trial_is_forbidden(client: Client, token: str) -> None:
    assert _vote(client, token, str(uuid.uuid4())).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"choice": "a"}, "choice"),
        ({"client_vote_id": "not-a-uuid"}, "client_vote_id"),
        ({"response_ms": -4}, "response_ms"),
        ({"flips": -1}, "flips"),
    ],
)
def test_a_malformed_vote_names_the_field(
    client: Client, token: str, body: dict[str, Any], field: str
) -> None:
    trial = _next(client, token).json()["trial"]
    response = _vote(client, token, trial, **body)
    assert response.status_code == 400
    assert field in response.json()["error"]
    assert not Vote.objects.exists()


def test_a_vote_body_that_is_not_json_is_400(client: Client, token: str) -> None:
    trial = _next(client, token).json()["trial"]
    response = client.post(
        f"/api/v1/trials/{trial}/vote",
        data="choice=left",
        content_type="text/plain",
        headers=_auth(token),
    )
    assert response.status_code == 400


def test_a_tie_needs_a_study_that_allows_ties(client: Client, token: str, study: Study) -> None:
    trial = _next(client, token).json()["trial"]
    assert _vote(client, token, trial, choice="tie").status_code == 400
    Study.objects.filter(pk=study.pk).update(allow_ties=True)
    assert _vote(client, token, trial, choice="tie").status_code == 201


def test_a_session_that_has_not_passed_screening_gets_no_trials(
    client: Client, make_study: Any
) -> None:
    screened = make_study(slug="screened", screening_required=True)
    token = _start(client, screened.slug).json()["session"]
    response = _next(client, token)
    assert response.status_code == 403
    assert "screening" in response.json()["error"]
    assert not Trial.objects.exists()


def test_a_session_that_lost_its_admission_cannot_vote(
    client: Client, token: str, study: Study
) -> None:
    trial = _next(client, token).json()["trial"]
    Study.objects.filter(pk=study.pk).update(screening_required=True)
    assert _vote(client, token, trial).status_code == 403
    assert not Vote.objects.exists()


def test_after_the_last_vote_next_sends_the_rater_to_the_platform(
    client: Client, token: str
) -> None:
    for _ in range(4):
        trial = _next(client, token).json()["trial"]
        assert _vote(client, token, trial).status_code == 201
    body = _next(client, token).json()
    assert body == {
        "finished": True,
        "ended": "completed",
        "completion_url": "https://app.prolific.com/submissions/complete?cc=SMALL-DONE",
    }
    session = RaterSession.objects.get(token=token)
    assert session.status == RaterSession.Status.COMPLETED
    assert session.completed_at is not None
    assert Vote.objects.filter(trial__session=session).count() == 4


def test_votes_for_issued_trials_are_kept_after_the_study_closes(
    client: Client, token: str, study: Study
) -> None:
    first = _next(client, token).json()
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    assert _vote(client, token, first["trial"]).status_code == 201
    # The trial issued ahead is still the rater's to answer; then no new ones.
    second = _next(client, token).json()
    assert second["trial"] == first["next"]["trial"]
    assert "next" not in second
    assert _vote(client, token, second["trial"]).status_code == 201
    response = _next(client, token)
    assert response.status_code == 409
    assert "closed" in response.json()["error"]
    assert Vote.objects.count() == 2


def test_rater_images_are_png_and_their_headers_name_nothing(client: Client, token: str) -> None:
    body = _next(client, token).json()
    for url in body["images"].values():
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        content = response.getvalue()
        assert content.startswith(b"\x89PNG\r\n\x1a\n")
        headers = " ".join(f"{k}: {v}" for k, v in response.items()).lower()
        for word in ("jpeg", "webp", "r1", "r2", "filename"):
            assert word not in headers
