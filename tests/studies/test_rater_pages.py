"""The rater's path through the pages: entry, consent, screening, viewer, completion."""

from __future__ import annotations

import uuid
from typing import Any

from django.test import Client

from studies import services
from studies.models import RaterSession, Study, Trial

PROLIFIC = "?PROLIFIC_PID=pid-42&STUDY_ID=st-1&SESSION_ID=se-9"


def _consent(client: Client, slug: str, query: str = PROLIFIC) -> Any:
    page = client.get(f"/r/{slug}/{query}")
    assert page.status_code == 200
    form = page.context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    return client.post(f"/r/{slug}/", data)


def test_the_entry_page_shows_consent_and_carries_the_prolific_ids(
    client: Client, study: Study
) -> None:
    page = client.get(f"/r/{study.slug}/{PROLIFIC}")
    assert page.status_code == 200
    assert b"Consent" in page.content
    assert b'value="pid-42"' in page.content
    assert not RaterSession.objects.exists()  # nothing recorded before consent


def test_agreeing_starts_a_prolific_session_and_opens_the_viewer(
    client: Client, study: Study
) -> None:
    response = _consent(client, study.slug)
    assert response.status_code == 302
    assert response["Location"] == f"/r/{study.slug}/rate/"
    session = RaterSession.objects.get()
    assert (session.rater.platform, session.rater.external_id) == ("prolific", "pid-42")
    assert session.recruitment == {"study_id": "st-1", "session_id": "se-9"}
    viewer = client.get(response["Location"])
    assert viewer.status_code == 200
    assert session.token.encode() in viewer.content


def test_a_plain_link_without_an_id_gets_an_anonymous_participant(
    client: Client, study: Study
) -> None:
    response = _consent(client, study.slug, query="")
    assert response.status_code == 302
    rater = RaterSession.objects.get().rater
    assert rater.platform == "direct"
    assert rater.external_id.startswith("anon-")


def test_returning_to_the_entry_link_resumes(client: Client, study: Study) -> None:
    _consent(client, study.slug)
    again = client.get(f"/r/{study.slug}/{PROLIFIC}")
    assert again.status_code == 302
    assert again["Location"] == f"/r/{study.slug}/rate/"
    assert RaterSession.objects.count() == 1


def test_a_study_with_screening_sends_the_rater_to_the_display_check(
    client: Client, make_study: Any
) -> None:
    screened = make_study(slug="screened", screening_required=True)
    response = _consent(client, screened.slug)
    assert response["Location"] == f"/screening/{screened.slug}/"
    assert client.get(response["Location"])["Location"] == f"/screening/{screened.slug}/display/"
    # The viewer is not reachable before the screening is passed.
    assert client.get(f"/r/{screened.slug}/rate/")["Location"] == response["Location"]


def test_a_closed_study_says_so(client: Client, study: Study) -> None:
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    page = client.get(f"/r/{study.slug}/{PROLIFIC}")
    assert page.status_code == 403
    assert b"not accepting" in page.content


def test_the_completion_page_shows_the_code_only_when_every_vote_is_in(
    client: Client, study: Study
) -> None:
    _consent(client, study.slug)
    session = RaterSession.objects.get()
    assert client.get(f"/r/{study.slug}/done/")["Location"] == f"/r/{study.slug}/rate/"
    for _ in range(session.trials_total):
        trial = services.trial_next(session=session)
        assert isinstance(trial, Trial)
        services.vote_record(
            session=session,
            trial_id=trial.public_id,
            choice="left",
            client_vote_id=uuid.uuid4(),
            response_ms=1000,
            flips=0,
        )
    done = client.get(f"/r/{study.slug}/done/")
    assert done.status_code == 200
    assert b"SMALL-DONE" in done.content
    assert b"https://app.prolific.com/submissions/complete?cc=SMALL-DONE" in done.content
