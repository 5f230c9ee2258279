"""Who may see what: one helper per object, so views never filter inline."""

from __future__ import annotations

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from studies.models import RaterSession, Study

_RATER_SESSION_KEY = "rater-session:{slug}"


def get_study_for_researcher(request: HttpRequest, slug: str) -> Study:
    """The study if the logged-in user owns it; 404 for everyone else.

    A study someone may not see is reported as missing, not forbidden, so its
    existence does not leak.
    """
    study = get_object_or_404(Study, slug=slug)
    if not request.user.is_authenticated or (
        study.owner_id != request.user.pk and not request.user.is_superuser
    ):
        raise Http404("No such study.")
    return study


def remember_rater_session(request: HttpRequest, session: RaterSession) -> None:
    request.session[_RATER_SESSION_KEY.format(slug=session.study.slug)] = session.token


def get_rater_session(request: HttpRequest, study: Study) -> RaterSession | None:
    """The rater session this browser started on the study, if any."""
    token = request.session.get(_RATER_SESSION_KEY.format(slug=study.slug))
    if not token:
        return None
    return (
        RaterSession.objects.select_related("study", "rater")
        .filter(study=study, token=token)
        .first()
    )


def get_rater_session_by_bearer(request: HttpRequest) -> RaterSession | None:
    """The session named by an ``Authorization: Bearer <token>`` header, if valid."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return RaterSession.objects.select_related("study", "rater").filter(token=token.strip()).first()
