"""The screening pages a rater passes before any comparison."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from evalsite.framing import frameable_by_mturk
from screening.forms import DisplayReportForm
from screening.services import display_check_record
from studies import access
from studies.models import RaterSession


@frameable_by_mturk
@require_http_methods(["GET", "POST"])
def display_check(request: HttpRequest, slug: str) -> HttpResponse:
    session = access.rater_session_at_step(request, slug, "screening:display_check")
    if not isinstance(session, RaterSession):
        return session
    check = None
    form = DisplayReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        check = display_check_record(session=session, report=form.report())
        if check.accepted:
            return redirect("studies:rater_viewer", slug=slug)
    context = {"study": session.study, "form": form, "check": check}
    return render(request, "screening/display_check.html", context)
