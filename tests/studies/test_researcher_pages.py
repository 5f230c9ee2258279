"""Researcher pages: who may see a study, exports, and fits as background tasks."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from studies import services
from studies.models import Fit, Study

REPO = Path(__file__).resolve().parents[2]


def _login(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/studies/{slug}/",
        "/studies/{slug}/export/votes.csv",
        "/studies/{slug}/export/conditions.csv",
    ],
)
def test_an_anonymous_visitor_is_sent_to_log_in(client: Client, study: Study, url: str) -> None:
    response = client.get(url.format(slug=study.slug))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "url",
    [
        "/studies/{slug}/",
        "/studies/{slug}/export/votes.csv",
        "/studies/{slug}/export/conditions.csv",
    ],
)
def test_another_researcher_gets_404(
    client: Client, study: Study, other_researcher: Any, url: str
) -> None:
    assert _login(client, other_researcher).get(url.format(slug=study.slug)).status_code == 404


def test_another_researcher_cannot_start_a_fit(
    client: Client, study: Study, other_researcher: Any
) -> None:
    response = _login(client, other_researcher).post(f"/studies/{study.slug}/fit")
    assert response.status_code == 404
    assert not Fit.objects.exists()


def test_the_study_list_shows_only_ones_own_studies(
    client: Client, make_study: Any, owner: Any, other_researcher: Any
) -> None:
    make_study(slug="mine")
    make_study(slug="theirs", owner=other_researcher)
    page = _login(client, owner).get("/studies/")
    assert b"/studies/mine/" in page.content
    assert b"/studies/theirs/" not in page.content


def test_the_owner_sees_the_study_with_its_rater_link(
    client: Client, study: Study, owner: Any
) -> None:
    page = _login(client, owner).get(f"/studies/{study.slug}/")
    assert page.status_code == 200
    assert f"/r/{study.slug}/".encode() in page.content
    assert page.context["progress"]["conditions"] == 4


def _answer_all(study: Study, participant: str, choose: Any) -> None:
    session, _ = services.rater_session_start(
        study=study, platform="direct", participant=participant
    )
    while (trial := services.trial_next(session=session)) is not None:
        services.vote_record(
            session=session,
            trial_id=trial.public_id,
            choice=choose(trial),
            client_vote_id=uuid.uuid4(),
            response_ms=1200,
            flips=0,
        )


def _more_bits_wins(trial: Any) -> str:
    return "left" if trial.left.bpp > trial.right.bpp else "right"


def test_the_votes_export_is_the_public_format(client: Client, study: Study, owner: Any) -> None:
    _answer_all(study, "p1", _more_bits_wins)
    response = _login(client, owner).get(f"/studies/{study.slug}/export/votes.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 4
    assert list(rows[0])[:5] == ["rater", "image", "condition_a", "condition_b", "choice"]
    conditions = {f"{c}-r{i}" for c in ("jpeg", "webp") for i in (1, 2)}
    for row in rows:
        assert row["condition_a"] in conditions and row["condition_b"] in conditions
        assert row["choice"] in {"a", "b"}
        assert row["rater"].startswith("r") and "p1" not in row["rater"]
        # The shown region is recorded with every vote (the small images are shown whole).
        assert [row[k] for k in ("crop_x", "crop_y", "crop_width", "crop_height")] == [
            "0",
            "0",
            "96",
            "96",
        ]


@pytest.mark.django_db(transaction=True)
def test_fit_now_queues_a_task_that_the_worker_runs(
    client: Client, study: Study, owner: Any, run_worker: Any
) -> None:
    for i in range(6):
        _answer_all(study, f"p{i}", _more_bits_wins)
    response = _login(client, owner).post(f"/studies/{study.slug}/fit")
    assert response.status_code == 302
    fit = Fit.objects.get()
    assert fit.status == Fit.Status.QUEUED and fit.task_id  # queued, not run in the request
    page = client.get(f"/studies/{study.slug}/")
    assert page.context["working"] is True
    run_worker()
    fit.refresh_from_db()
    assert fit.status == Fit.Status.SUCCEEDED, fit.error
    assert fit.n_votes == 24
    page = client.get(f"/studies/{study.slug}/")
    assert page.context["latest_fit"] == fit
    report = client.get(f"/studies/{study.slug}/fits/{fit.pk}/report.html")
    assert report.status_code == 200
    assert b"<svg" in report.getvalue()
    elo = client.get(f"/studies/{study.slug}/fits/{fit.pk}/elo.csv")
    header = elo.getvalue().splitlines()[0]
    assert header == b"condition,codec,bpp,elo,elo_lo,elo_hi"


def test_a_fit_without_votes_fails_with_a_message(study: Study, owner: Any) -> None:
    fit = Fit.objects.create(study=study, anchor_codec="jpeg", seed=1)
    services.fit_run(fit_id=fit.pk)
    fit.refresh_from_db()
    assert fit.status == Fit.Status.FAILED
    assert "no votes" in fit.error


def test_fit_files_of_another_study_are_not_served(
    client: Client, make_study: Any, owner: Any, other_researcher: Any
) -> None:
    theirs = make_study(slug="theirs", owner=other_researcher)
    fit = Fit.objects.create(
        study=theirs, anchor_codec="jpeg", seed=1, status=Fit.Status.SUCCEEDED, output_dir="x"
    )
    mine = make_study(slug="mine")
    response = _login(client, owner).get(f"/studies/{mine.slug}/fits/{fit.pk}/report.html")
    assert response.status_code == 404
