"""The researcher's pages: studies, their progress, raters, fits, downloads."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import SuspiciousFileOperation
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils._os import safe_join
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalsite.framing import report_styles_allowed
from studies import access, selectors, services
from studies.bundle import build_bundle
from studies.forms import CollaboratorForm, ExclusionForm, StudyUploadForm
from studies.models import Fit, Study, StudyBuild, StudyStatus
from studies.uploads import UploadError, unpack_upload, upload_refused

# Files of a fit's output directory that researchers may download, by suffix.
FIT_FILE_TYPES = {
    ".html": "text/html",
    ".csv": "text/csv",
    ".json": "application/json",
    ".nc": "application/x-netcdf",
}
STATUS_ACTIONS = {
    "launch": StudyStatus.OPEN,
    "pause": StudyStatus.PAUSED,
    "close": StudyStatus.CLOSED,
}


@login_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    studies = (
        Study.objects.filter(Q(owner=request.user.pk) | Q(collaborators=request.user.pk))
        .distinct()
        .order_by("-created_at")
    )
    return render(request, "studies/study_list.html", {"studies": studies})


@login_required
@require_http_methods(["GET", "POST"])
def study_new(request: HttpRequest) -> HttpResponse:
    """Create a study by uploading its definition file and a zip of its folders."""
    form = StudyUploadForm(request.POST or None, request.FILES or None)
    refused = upload_refused(request) if request.method == "POST" else None
    if refused:
        return render(
            request,
            "studies/study_new.html",
            {"form": StudyUploadForm(), "refused": refused},
            status=413,
        )
    if request.method == "POST" and form.is_valid():
        try:
            spec = unpack_upload(form.cleaned_data["spec"], form.cleaned_data.get("folder"))
            study = services.study_create_from_spec(
                spec=spec.spec, owner=request.user, source_dir=spec.folder
            )
        except (UploadError, services.ServiceError) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("studies:study_detail", slug=study.slug)
    return render(request, "studies/study_new.html", {"form": form})


@login_required
@require_GET
def study_detail(request: HttpRequest, slug: str) -> HttpResponse:
    study = access.get_study_for_researcher(request, slug)
    fits = list(study.fits.select_related("requested_by")[:30])
    latest_fit = next((f for f in fits if f.status == "succeeded" and not f.fast), None)
    build = StudyBuild.objects.filter(study=study).first()
    context = {
        "study": study,
        "is_owner": study.owner_id == request.user.pk,
        "build": build,
        "progress": selectors.study_progress(study),
        "coverage": selectors.votes_per_condition_and_image(study),
        "pairs": selectors.pair_coverage(study),
        "raters": selectors.rater_table(study, fit=latest_fit),
        "fits": fits,
        "latest_fit": latest_fit,
        "preview": next((f for f in fits if f.status == "succeeded" and f.fast), None),
        "refresh": selectors.latest_refresh(study) if study.needs_refreshes else None,
        "rater_link": request.build_absolute_uri(
            reverse("studies:rater_entry", kwargs={"slug": slug})
        ),
        "working": any(not f.is_finished for f in fits)
        or (build is not None and build.status in {"queued", "running"}),
        "exclusion_form": ExclusionForm(),
        "collaborator_form": CollaboratorForm(),
    }
    return render(request, "studies/study_detail.html", context)


@login_required
@require_POST
def study_status(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    study = access.get_study_for_researcher(request, slug)
    if action not in STATUS_ACTIONS:
        raise Http404("No such action.")
    try:
        services.study_set_status(study=study, status=STATUS_ACTIONS[action])
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect("studies:study_detail", slug=slug)


@login_required
@require_POST
def study_fit(request: HttpRequest, slug: str) -> HttpResponse:
    study = access.get_study_for_researcher(request, slug)
    services.fit_request(study=study, requested_by=request.user, fast="fast" in request.POST)
    return redirect("studies:study_detail", slug=slug)


@login_required
@require_POST
def rater_exclusion(request: HttpRequest, slug: str, rater: str) -> HttpResponse:
    """Exclude a rater (with a reason) or take the exclusion back."""
    study = access.get_study_for_researcher(request, slug)
    try:
        target = services.rater_by_pseudonym(study, rater)
        if "include" in request.POST:
            services.exclusion_remove(study=study, rater=target)
        else:
            form = ExclusionForm(request.POST)
            reason = form.cleaned_data["reason"] if form.is_valid() else ""
            services.exclusion_add(study=study, rater=target, by=request.user, reason=reason)
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect(reverse("studies:study_detail", kwargs={"slug": slug}) + "#raters")


@login_required
@require_POST
def study_collaborators(request: HttpRequest, slug: str) -> HttpResponse:
    study = access.get_study_for_owner(request, slug)
    form = CollaboratorForm(request.POST)
    if form.is_valid():
        try:
            if "remove" in request.POST:
                services.collaborator_remove(study=study, username=form.cleaned_data["username"])
            else:
                services.collaborator_add(study=study, username=form.cleaned_data["username"])
        except services.ServiceError as exc:
            messages.error(request, str(exc))
    return redirect(reverse("studies:study_detail", kwargs={"slug": slug}) + "#collaborators")


@xframe_options_sameorigin  # the study page shows the report in a frame
@report_styles_allowed
@login_required
@require_GET
def fit_file(request: HttpRequest, slug: str, fit_id: int, name: str) -> FileResponse:
    study = access.get_study_for_researcher(request, slug)
    fit = get_object_or_404(Fit, study=study, pk=fit_id, status=Fit.Status.SUCCEEDED)
    content_type = FIT_FILE_TYPES.get(Path(name).suffix)
    if content_type is None or "/" in name:
        raise Http404("No such file.")
    try:
        path = Path(safe_join(settings.MEDIA_ROOT, fit.output_dir, name))
    except SuspiciousFileOperation:
        raise Http404("No such file.") from None
    if not path.is_file():
        raise Http404("No such file.")
    return FileResponse(
        path.open("rb"),
        content_type=content_type,
        as_attachment=name != "report.html",
        filename=name,
    )


@login_required
@require_GET
def fit_bundle(request: HttpRequest, slug: str, fit_id: int) -> HttpResponse:
    study = access.get_study_for_researcher(request, slug)
    fit = get_object_or_404(Fit, study=study, pk=fit_id, status=Fit.Status.SUCCEEDED)
    try:
        data = build_bundle(study, fit)
    except ValueError as exc:
        raise Http404(str(exc)) from exc
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-fit{fit.pk}.zip"'
    return response


@login_required
@require_GET
def study_export(request: HttpRequest, slug: str, table: str) -> HttpResponse:
    study = access.get_study_for_researcher(request, slug)
    frames = {
        "votes": selectors.votes_frame,
        "conditions": selectors.conditions_frame,
        "exclusions": selectors.exclusions_frame,
    }
    if table not in frames:
        raise Http404("No such table.")
    frame = selectors.neutralise_formulas(frames[table](study))
    response = HttpResponse(frame.to_csv(index=False), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-{table}.csv"'
    return response
