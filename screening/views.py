"""The screening pages a rater passes before any comparison, and the researcher's statistics."""

from __future__ import annotations

import io

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from PIL import Image

from evalsite.framing import frameable_by_mturk
from screening import plates, selectors, services
from screening.forms import ArtifactAnswerForm, DisplayReportForm, PlateAnswerForm
from screening.models import ArtifactTrial, PlateItem
from studies import access
from studies.models import RaterSession, Study

STEP_URLS = {
    services.Step.DISPLAY: "screening:display_check",
    services.Step.COLOUR: "screening:colour",
    services.Step.ARTIFACTS: "screening:artifacts",
    services.Step.DONE: "screening:next",
}
# Screening images are unique per attempt; never cache them anywhere shared.
PRIVATE_IMAGE = "private, no-store"


def _session_on_step(
    request: HttpRequest, slug: str, step: services.Step
) -> RaterSession | HttpResponse:
    """The rater's session if screening step ``step`` is theirs now, else a redirect."""
    study = get_object_or_404(Study, slug=slug)
    session = access.get_rater_session(request, study)
    if session is None:
        return redirect("studies:rater_entry", slug=slug)
    if session.has_ended or session.is_admitted:
        return redirect(access.rater_next_step(session))
    current = services.next_step(session)
    if current != step:
        return redirect(STEP_URLS[current], slug=slug)
    return session


@frameable_by_mturk
@require_GET
def screening_next(request: HttpRequest, slug: str) -> HttpResponse:
    """Send the rater to their next screening step, or decide once all are done."""
    session = _session_on_step(request, slug, services.Step.DONE)
    if not isinstance(session, RaterSession):
        return session
    services.screening_decide(session=session)
    session.refresh_from_db()
    return redirect(access.rater_next_step(session))


@frameable_by_mturk
@require_http_methods(["GET", "POST"])
def display_check(request: HttpRequest, slug: str) -> HttpResponse:
    session = _session_on_step(request, slug, services.Step.DISPLAY)
    if not isinstance(session, RaterSession):
        return session
    check = None
    form = DisplayReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        check = services.display_check_record(session=session, report=form.report())
        if check.accepted:
            return redirect("screening:next", slug=slug)
    context = {"study": session.study, "form": form, "check": check}
    return render(request, "screening/display_check.html", context)


@frameable_by_mturk
@require_http_methods(["GET", "POST"])
def colour(request: HttpRequest, slug: str) -> HttpResponse:
    session = _session_on_step(request, slug, services.Step.COLOUR)
    if not isinstance(session, RaterSession):
        return session
    attempt = services.attempt_for(session)
    if request.method == "POST":
        form = PlateAnswerForm(request.POST)
        if form.is_valid():
            services.plate_answer(
                attempt=attempt,
                token=form.cleaned_data["plate"],
                answer=form.cleaned_data["answer"],
            )
        return redirect("screening:next", slug=slug)
    plate = services.plate_current(attempt)
    if plate is None:
        return redirect("screening:next", slug=slug)
    context = {
        "study": session.study,
        "plate": plate,
        "number": plate.position + 1,
        "count": len(services.PLATE_SEQUENCE),
    }
    return render(request, "screening/colour.html", context)


@frameable_by_mturk
@require_http_methods(["GET", "POST"])
def artifact_test(request: HttpRequest, slug: str) -> HttpResponse:
    session = _session_on_step(request, slug, services.Step.ARTIFACTS)
    if not isinstance(session, RaterSession):
        return session
    attempt = services.attempt_for(session)
    if request.method == "POST":
        form = ArtifactAnswerForm(request.POST)
        if form.is_valid():
            services.artifact_answer(
                attempt=attempt,
                position=form.cleaned_data["position"],
                answer=form.cleaned_data["answer"],
            )
        return redirect("screening:artifacts", slug=slug)
    try:
        trial = services.artifact_current(attempt)
    except services.ScreeningNotReady:
        return render(request, "screening/not_ready.html", {"study": session.study}, status=503)
    if trial is None:
        return redirect("screening:next", slug=slug)
    context = {"study": session.study, "trial": trial, "number": trial.position + 1}
    return render(request, "screening/artifacts.html", context)


def _png_response(data: bytes) -> HttpResponse:
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = PRIVATE_IMAGE
    return response


@require_GET
def plate_image(request: HttpRequest, token: str) -> HttpResponse:
    plate = PlateItem.objects.filter(token=token).first()
    if plate is None:
        raise Http404("No such image.")
    return _png_response(plates.generate_plate(plate.kind, plate.seed).png())


@require_GET
def artifact_image(request: HttpRequest, token: str, side: str) -> HttpResponse:
    """One side of an artifact item, uncompressed so both sides have the same size."""
    trial = ArtifactTrial.objects.select_related("item__image").filter(token=token).first()
    if trial is None or side not in {"l", "r"}:
        raise Http404("No such image.")
    compressed = trial.compressed_side == ("left" if side == "l" else "right")
    source = trial.item.file if compressed else trial.item.image.file
    with source.open("rb") as handle:
        pixels = Image.open(handle).convert("RGB")
        buffer = io.BytesIO()
        # Stored without compression: both sides of an item are the same number
        # of bytes, so the size of a response does not tell which is which.
        pixels.save(buffer, format="PNG", compress_level=0)
    return _png_response(buffer.getvalue())


@login_required
@require_GET
def stats(request: HttpRequest, slug: str) -> HttpResponse:
    study = access.get_study_for_researcher(request, slug)
    context = {"study": study, "stats": selectors.screening_stats(study)}
    return render(request, "screening/stats.html", context)
