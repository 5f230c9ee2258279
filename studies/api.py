"""The rater JSON API (docs/api.md), used by the viewer and open to other clients.

Sessions authenticate with ``Authorization: Bearer <token>``; the token is
what ``POST /api/v1/studies/<slug>/sessions`` returned.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import get_script_prefix, get_urlconf, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from studies import access, services
from studies.forms import SessionStartForm, VoteForm, form_errors
from studies.models import RaterSession, Study, Trial
from studies.ratelimits import rate_limited


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def body_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Refuse a body over ``RATER_API_MAX_BODY_BYTES`` with 413: by its declared
    length before reading it, then by what was read."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limit = settings.RATER_API_MAX_BODY_BYTES
        if _declared_length(request) > limit or len(request.body) > limit:
            return _error(413, f"the body is larger than the {limit} bytes a call may send")
        return view(request, *args, **kwargs)

    return wrapped


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


# Stands for the token while the image URL's pattern is reversed once.
_TOKEN_PLACEHOLDER = "0" * 32


@functools.lru_cache(maxsize=16)
def _image_url_parts(script_prefix: str, urlconf: str | None) -> tuple[str, str]:
    url = reverse("studies:image", kwargs={"token": _TOKEN_PLACEHOLDER}, urlconf=urlconf)
    before, _, after = url.partition(_TOKEN_PLACEHOLDER)
    return before, after


def image_url(token: str) -> str:
    """``reverse("studies:image", ...)``, without reversing for each image of each trial.

    Tokens are hexadecimal (``models.new_image_token``), so they need no quoting.
    """
    before, after = _image_url_parts(get_script_prefix(), get_urlconf())
    return f"{before}{token}{after}"


def trial_payload(trial: Trial) -> dict[str, Any]:
    """What a client needs to show one trial; nothing in it names a condition."""
    session = trial.session
    study = session.study
    return {
        "trial": str(trial.public_id),
        "mode": study.display_mode,
        "question": study.question,
        "practice": trial.is_practice,
        "images": {
            "reference": image_url(trial.source_image.token),
            "left": image_url(trial.left.token),
            "right": image_url(trial.right.token),
        },
        "size": {"width": trial.source_image.width, "height": trial.source_image.height},
        "crop": {
            "x": trial.crop_x,
            "y": trial.crop_y,
            "width": trial.crop_width,
            "height": trial.crop_height,
        },
        "allow_ties": study.allow_ties,
        "min_view_ms": study.min_view_ms,
        "min_flips": study.required_flips,
        "progress": {
            "done": max(0, trial.position - session.practice_total),
            "total": session.trials_total,
        },
    }


def finished_payload(session: RaterSession) -> dict[str, Any]:
    return {"finished": True, "ended": session.status, "completion_url": session.completion_url()}


def _no_session(request: HttpRequest, **kwargs: Any) -> None:
    return None


def _url_token(request: HttpRequest, **kwargs: Any) -> str:
    return str(kwargs["token"])


def _bearer(request: HttpRequest, **kwargs: Any) -> str | None:
    return access.bearer_token(request)


@csrf_exempt
@require_POST
@body_limited
@rate_limited(_no_session)
def session_start(request: HttpRequest, slug: str) -> JsonResponse:
    study = get_object_or_404(Study, slug=slug)
    body = _json_body(request)
    if body is None:
        return _error(400, "the body must be a JSON object")
    form = SessionStartForm(body)
    if not form.is_valid():
        return _error(400, form_errors(form))
    try:
        session, created = services.rater_session_start(
            study=study, user_agent=request.headers.get("User-Agent", ""), **form.session_fields()
        )
    except services.StudyNotOpen as exc:
        return _error(403, str(exc))
    return JsonResponse({"session": session.token}, status=201 if created else 200)


@require_GET
@rate_limited(_url_token)
def session_next(request: HttpRequest, token: str) -> JsonResponse:
    unauthorised = _error(401, "send the session token as 'Authorization: Bearer <token>'")
    if access.bearer_token(request) != token:
        return unauthorised
    try:
        found = services.trials_pending_by_token(token=token)
    except services.NotAdmitted as exc:
        return _error(403, str(exc))
    except services.SessionExpired as exc:
        return _error(410, str(exc))
    except services.StudyNotOpen as exc:
        return _error(409, str(exc))
    if found is None:
        return unauthorised
    session, pending = found
    if not pending:  # the session (read with its trials) has ended
        return JsonResponse(finished_payload(session))
    payload = trial_payload(pending[0])
    if len(pending) > 1:
        payload["next"] = trial_payload(pending[1])
    return JsonResponse(payload)


@csrf_exempt
@require_POST
@body_limited
@rate_limited(_bearer)
def trial_vote(request: HttpRequest, trial_id: uuid.UUID) -> JsonResponse:
    unauthorised = _error(401, "send the session token as 'Authorization: Bearer <token>'")
    token = access.bearer_token(request)
    if token is None:
        return unauthorised
    body = _json_body(request)
    form = VoteForm(body) if body is not None else None
    if form is None or not form.is_valid():
        # Who asks is checked first, as for every call.
        if access.get_rater_session_by_bearer(request) is None:
            return unauthorised
        if form is None:
            return _error(400, "the body must be a JSON object")
        return _error(400, form_errors(form))
    try:
        recorded = services.vote_record_by_token(
            token=token, trial_id=trial_id, **form.cleaned_data
        )
    except (services.TrialNotIssued, services.NotAdmitted) as exc:
        return _error(403, str(exc))
    except services.VoteConflict as exc:
        return _error(409, str(exc))
    except services.SessionExpired as exc:
        return _error(410, str(exc))
    except services.ServiceError as exc:
        return _error(400, str(exc))
    if recorded is None:
        return unauthorised
    vote, created = recorded
    payload: dict[str, Any] = {
        "vote": str(vote.client_vote_id),
        "trial": str(trial_id),
        "choice": vote.choice,
        "recorded_at": vote.created_at.isoformat(),
    }
    trial = vote.trial
    if trial.is_practice:  # feedback, so the rater learns the task
        payload["correct"] = vote.choice == trial.golden_answer
    return JsonResponse(payload, status=201 if created else 200)
