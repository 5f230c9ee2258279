"""Who may do what on the researcher's pages: owner, collaborator, other researcher, anonymous."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from studies import services
from studies.models import Exclusion, Fit, Study

READ_URLS = [
    "/studies/{slug}/",
    "/studies/{slug}/export/votes.csv",
    "/studies/{slug}/export/conditions.csv",
    "/studies/{slug}/export/exclusions.csv",
    "/screening/{slug}/stats/",
]


@pytest.fixture
def collaborator(django_user_model: Any, study: Study) -> Any:
    user = django_user_model.objects.create_user(username="colleague", password="x-pass-123")
    services.collaborator_add(study=study, username="colleague")
    return user


@pytest.fixture
def rater_pseudonym(study: Study) -> str:
    session, _ = services.rater_session_start(study=study, platform="direct", participant="p")
    return f"r{session.rater_id}"


def _as(client: Client, user: Any | None) -> Client:
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("url", READ_URLS)
def test_owner_and_collaborator_read_others_get_404_anonymous_logs_in(
    client: Client, study: Study, owner: Any, collaborator: Any, other_researcher: Any, url: str
) -> None:
    url = url.format(slug=study.slug)
    assert _as(Client(), owner).get(url).status_code == 200
    assert _as(Client(), collaborator).get(url).status_code == 200
    assert _as(Client(), other_researcher).get(url).status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def test_the_study_list_shows_owned_and_shared_studies(
    study: Study, collaborator: Any, other_researcher: Any
) -> None:
    assert b"/studies/small/" in _as(Client(), collaborator).get("/studies/").content
    assert b"/studies/small/" not in _as(Client(), other_researcher).get("/studies/").content


@pytest.mark.parametrize("role", ["owner", "collaborator"])
def test_owner_and_collaborator_run_the_study(
    study: Study, owner: Any, collaborator: Any, rater_pseudonym: str, role: str
) -> None:
    user = owner if role == "owner" else collaborator
    client = _as(Client(), user)
    assert client.post(f"/studies/{study.slug}/status/pause").status_code == 302
    study.refresh_from_db()
    assert study.status == Study.Status.PAUSED
    client.post(f"/studies/{study.slug}/raters/{rater_pseudonym}/exclusion", {"reason": "slow"})
    exclusion = Exclusion.objects.get()
    assert (exclusion.reason, exclusion.excluded_by) == ("slow", user)
    client.post(f"/studies/{study.slug}/fit")
    assert Fit.objects.get().requested_by == user


def test_another_researcher_can_change_nothing(
    study: Study, other_researcher: Any, rater_pseudonym: str
) -> None:
    client = _as(Client(), other_researcher)
    posts = [
        f"/studies/{study.slug}/status/close",
        f"/studies/{study.slug}/fit",
        f"/studies/{study.slug}/raters/{rater_pseudonym}/exclusion",
        f"/studies/{study.slug}/collaborators",
    ]
    for url in posts:
        assert client.post(url, {"reason": "x", "username": "other"}).status_code == 404
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN
    assert not Fit.objects.exists() and not Exclusion.objects.exists()
    assert not study.collaborators.exists()


def test_anonymous_visitors_change_nothing(
    client: Client, study: Study, rater_pseudonym: str
) -> None:
    for url in (f"/studies/{study.slug}/status/close", f"/studies/{study.slug}/fit"):
        response = client.post(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and not Fit.objects.exists()


def test_only_the_owner_shares_the_study(
    study: Study, owner: Any, collaborator: Any, other_researcher: Any
) -> None:
    response = _as(Client(), collaborator).post(
        f"/studies/{study.slug}/collaborators", {"username": "other"}
    )
    assert response.status_code == 404
    assert list(study.collaborators.values_list("username", flat=True)) == ["colleague"]
    _as(Client(), owner).post(f"/studies/{study.slug}/collaborators", {"username": "other"})
    assert set(study.collaborators.values_list("username", flat=True)) == {"colleague", "other"}
    _as(Client(), owner).post(
        f"/studies/{study.slug}/collaborators", {"username": "colleague", "remove": "1"}
    )
    assert list(study.collaborators.values_list("username", flat=True)) == ["other"]


def test_an_exclusion_needs_a_reason_and_can_be_taken_back(
    study: Study, owner: Any, rater_pseudonym: str
) -> None:
    client = _as(Client(), owner)
    url = f"/studies/{study.slug}/raters/{rater_pseudonym}/exclusion"
    client.post(url, {"reason": ""})
    assert not Exclusion.objects.exists()
    client.post(url, {"reason": "random clicking"})
    assert Exclusion.objects.count() == 1
    client.post(url, {"include": "1"})
    assert not Exclusion.objects.exists()


def test_a_rater_of_another_study_cannot_be_excluded_here(
    study: Study, make_study: Any, owner: Any
) -> None:
    other = make_study(slug="other-study")
    session, _ = services.rater_session_start(study=other, platform="direct", participant="q")
    client = _as(Client(), owner)
    client.post(f"/studies/{study.slug}/raters/r{session.rater_id}/exclusion", {"reason": "x"})
    assert not Exclusion.objects.exists()
