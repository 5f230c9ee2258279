"""Who may see what: one helper per object, so views never filter inline."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from studies.models import RaterSession, Study
from studies.services import rating_sql

_RATER_SESSION_KEY = "rater-session:{slug}"


def get_study_for_researcher(request: HttpRequest, slug: str) -> Study:
    """The study if the logged-in user owns it or was invited to it; 404 for everyone else.

    A study someone may not see is reported as missing, not forbidden, so its
    existence does not leak.
    """
    study = get_object_or_404(Study, slug=slug)
    if not study.can_be_seen_by(request.user):
        raise Http404("No such study.")
    return study


def get_study_for_owner(request: HttpRequest, slug: str) -> Study:
    """The study if the logged-in user owns it (sharing it is the owner's decision)."""
    study = get_study_for_researcher(request, slug)
    if study.owner_id != request.user.pk and not request.user.is_superuser:
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


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def get_rater_session_by_bearer(request: HttpRequest) -> RaterSession | None:
    """The session named by an ``Authorization: Bearer <token>`` header, if valid."""
    token = bearer_token(request)
    if token is None:
        return None
    # Every call of the rater API starts here: one hand-written query.
    return rating_sql.session_by_token(token)


def rater_next_step(session: RaterSession) -> str:
    """The URL of the page the rater should be on: screening, comparing, or done."""
    slug = session.study.slug
    if session.has_ended:
        return reverse("studies:rater_done", kwargs={"slug": slug})
    if not session.is_admitted:
        return reverse("screening:next", kwargs={"slug": slug})
    return reverse("studies:rater_viewer", kwargs={"slug": slug})


def rater_session_at_step(
    request: HttpRequest, slug: str, step: str
) -> RaterSession | HttpResponseRedirect:
    """The browser's session on the study if the rater belongs on page ``step``
    (a URL name); otherwise a redirect to where they belong."""
    study = get_object_or_404(Study, slug=slug)
    session = get_rater_session(request, study)
    if session is None:
        return redirect("studies:rater_entry", slug=slug)
    wanted = rater_next_step(session)
    if wanted != reverse(step, kwargs={"slug": slug}):
        return redirect(wanted)
    return session
