"""The rater's pages: entry and consent, the comparison viewer, the end, the images."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from evalsite.framing import frameable_by_mturk
from studies import access, services
from studies.forms import SessionStartForm
from studies.models import Rater, RaterSession, SourceImage, Stimulus, Study
from studies.ratelimits import rate_limited

# Query parameters recruitment platforms append to the study link.
PROLIFIC_PARAMS = {
    "PROLIFIC_PID": "participant",
    "STUDY_ID": "study_id",
    "SESSION_ID": "session_id",
}
MTURK_PARAMS = {
    "workerId": "participant",
    "assignmentId": "assignment_id",
    "hitId": "hit_id",
    "turkSubmitTo": "turk_submit_to",
}
# The assignmentId MTurk sends while a worker only previews the HIT.
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
# Files of a fit's output directory that researchers may download.
FIT_FILES = {
    "report.html": "text/html",
    "elo.csv": "text/csv",
    "bd_rate.csv": "text/csv",
    "diagnostics.json": "application/json",
}
# Rater-visible images may be cached by the browser, never by shared caches.
IMAGE_CACHE_CONTROL = "private, max-age=86400, immutable"


# --- Rater pages ----------------------------------------------------------------


def _entry_initial(request: HttpRequest) -> dict[str, str]:
    params = request.GET
    if "PROLIFIC_PID" in params:
        initial = {field: params.get(name, "") for name, field in PROLIFIC_PARAMS.items()}
        initial["platform"] = Rater.Platform.PROLIFIC
        return initial
    if "assignmentId" in params:
        initial = {field: params.get(name, "") for name, field in MTURK_PARAMS.items()}
        initial["platform"] = Rater.Platform.MTURK
        return initial
    participant = params.get("participant") or f"anon-{secrets.token_hex(8)}"
    return {"participant": participant, "platform": Rater.Platform.DIRECT}


def _busy(request: HttpRequest, scope: str, limit: int, retry_after: int) -> HttpResponse:
    response = render(request, "studies/rater_busy.html", {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def _no_session(request: HttpRequest, **kwargs: object) -> None:
    return None


@frameable_by_mturk
@require_http_methods(["GET", "POST"])
@rate_limited(_no_session, refuse=_busy)
def rater_entry(request: HttpRequest, slug: str) -> HttpResponse:
    """Consent and instructions; agreeing starts (or resumes) the rater's session."""
    study = get_object_or_404(Study, slug=slug)
    if request.GET.get("assignmentId") == MTURK_PREVIEW:
        return render(request, "studies/rater_entry.html", {"study": study, "preview": True})
    existing = access.get_rater_session(request, study)
    if existing is not None and request.method == "GET":
        return redirect(access.rater_next_step(existing))
    if request.method == "POST":
        form = SessionStartForm(request.POST)
        if form.is_valid():
            try:
                session, _ = services.rater_session_start(
                    study=study,
                    user_agent=request.headers.get("User-Agent", ""),
                    **form.session_fields(),
                )
            except services.StudyNotOpen:
                return render(request, "studies/rater_closed.html", {"study": study}, status=403)
            access.remember_rater_session(request, session)
            return redirect(access.rater_next_step(session))
    else:
        form = SessionStartForm(initial=_entry_initial(request))
    if not study.is_open:
        return render(request, "studies/rater_closed.html", {"study": study}, status=403)
    return render(request, "studies/rater_entry.html", {"study": study, "form": form})


@frameable_by_mturk
@require_GET
def rater_viewer(request: HttpRequest, slug: str) -> HttpResponse:
    session = access.rater_session_at_step(request, slug, "studies:rater_viewer")
    if not isinstance(session, RaterSession):
        return session
    if session.has_expired():
        context = {"study": session.study, "hours": settings.RATER_SESSION_MAX_AGE / 3600}
        return render(request, "studies/rater_expired.html", context, status=410)
    context = {
        "study": session.study,
        "session": session,
        "next_url": reverse("studies:api_session_next", kwargs={"token": session.token}),
        "vote_url": reverse(
            "studies:api_trial_vote",
            kwargs={"trial_id": "00000000-0000-0000-0000-000000000000"},
        ),
    }
    return render(request, "studies/rater_viewer.html", context)


@frameable_by_mturk
@require_GET
def rater_done(request: HttpRequest, slug: str) -> HttpResponse:
    session = access.rater_session_at_step(request, slug, "studies:rater_done")
    if not isinstance(session, RaterSession):
        return session
    submit_to = session.recruitment.get("turk_submit_to", "")
    context = {
        "study": session.study,
        "session": session,
        "mturk_submit_url": f"{submit_to}/mturk/externalSubmit" if submit_to else "",
    }
    return render(request, "studies/rater_done.html", context)


@require_GET
def image(request: HttpRequest, token: str) -> FileResponse:
    """A rater-visible image by its opaque token; the response names nothing."""
    record: Stimulus | SourceImage | None = Stimulus.objects.filter(token=token).first()
    if record is None:
        record = SourceImage.objects.filter(token=token).first()
    if record is None:
        raise Http404("No such image.")
    response = FileResponse(record.file.open("rb"), content_type="image/png")
    # FileResponse names the stored file; a rater-visible response names nothing.
    del response["Content-Disposition"]
    response["Cache-Control"] = IMAGE_CACHE_CONTROL
    return response
