"""The screening pages a rater passes before any comparison."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from screening.forms import DisplayReportForm
from screening.services import display_check_record
from studies import access
from studies.models import Study


@require_http_methods(["GET", "POST"])
def display_check(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    session = access.get_rater_session(request, study)
    if session is None:
        return redirect("studies:rater_entry", slug=slug)
    if session.is_admitted:
        return redirect("studies:rater_viewer", slug=slug)
    check = None
    form = DisplayReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        check = display_check_record(session=session, report=form.report())
        if check.accepted:
            return redirect("studies:rater_viewer", slug=slug)
    context = {"study": study, "form": form, "check": check}
    return render(request, "screening/display_check.html", context)
