"""Rater sessions expire RATER_SESSION_MAX_AGE after their start; retries stay safe."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from studies.models import RaterSession, Study, Trial, Vote

MAX_AGE = 3600


@pytest.fixture(autouse=True)
def _max_age(settings: Any) -> None:
    settings.RATER_SESSION_MAX_AGE = MAX_AGE


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _next(client: Client, token: str) -> Any:
    return client.get(f"/api/v1/sessions/{token}/next", headers=_auth(token))


def _vote(client: Client, token: str, trial: str, vote_id: str) -> Any:
    body = {"choice": "left", "client_vote_id": vote_id, "response_ms": 1500}
    return client.post(
        f"/api/v1/trials/{trial}/vote",
        data=json.dumps(body),
        content_type="application/json",
        headers=_auth(token),
    )


def _age(token: str, seconds: float) -> None:
    started = timezone.now() - timedelta(seconds=seconds)
    RaterSession.objects.filter(token=token).update(started_at=started)


@pytest.fixture
def token(client: Client, study: Study) -> str:
    response = client.post(
        f"/api/v1/studies/{study.slug}/sessions",
        data=json.dumps({"participant": "p1"}),
        content_type="application/json",
    )
    return str(response.json()["session"])


def test_an_expired_session_gets_no_trial_and_no_new_vote(client: Client, token: str) -> None:
    first = _next(client, token).json()
    _age(token, MAX_AGE - 60)  # still in time
    assert _vote(client, token, first["trial"], str(uuid.uuid4())).status_code == 201
    _age(token, MAX_AGE + 1)
    refused = _next(client, token)
    assert refused.status_code == 410
    assert "expired" in refused.json()["error"]
    trials = Trial.objects.count()
    vote = _vote(client, token, first["next"]["trial"], str(uuid.uuid4()))
    assert vote.status_code == 410
    assert "expired" in vote.json()["error"]
    assert Vote.objects.count() == 1
    assert Trial.objects.count() == trials  # nothing issued


def test_a_retry_of_a_stored_vote_is_still_answered_200(client: Client, token: str) -> None:
    trial = _next(client, token).json()["trial"]
    vote_id = str(uuid.uuid4())
    stored = _vote(client, token, trial, vote_id)
    assert stored.status_code == 201
    _age(token, MAX_AGE + 1)
    retry = _vote(client, token, trial, vote_id)
    assert retry.status_code == 200
    assert retry.json() == stored.json()
    assert Vote.objects.count() == 1


def test_a_finished_session_still_gets_its_completion_link(client: Client, token: str) -> None:
    for _ in range(4):
        trial = _next(client, token).json()["trial"]
        assert _vote(client, token, trial, str(uuid.uuid4())).status_code == 201
    _age(token, MAX_AGE + 1)
    body = _next(client, token).json()
    assert body["finished"] is True and body["ended"] == "completed"


def test_the_rater_page_says_the_session_expired(client: Client, study: Study) -> None:
    client.post(f"/r/{study.slug}/", {"participant": "p1"})
    assert client.get(f"/r/{study.slug}/rate/").status_code == 200
    _age(RaterSession.objects.get().token, MAX_AGE + 1)
    page = client.get(f"/r/{study.slug}/rate/")
    assert page.status_code == 410
    assert b"This session has expired" in page.content
    assert b"data-session" not in page.content  # no viewer, no token


def test_a_max_age_of_zero_never_expires(client: Client, token: str, settings: Any) -> None:
    settings.RATER_SESSION_MAX_AGE = 0
    _age(token, 365 * 24 * 3600)
    assert _next(client, token).status_code == 200
