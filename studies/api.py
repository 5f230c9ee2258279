"""The rater JSON API (docs/api.md), used by the viewer and open to other clients.

Sessions authenticate with ``Authorization: Bearer <token>``; the token is
what ``POST /api/v1/studies/<slug>/sessions`` returned.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from studies import access, services
from studies.forms import SessionStartForm, VoteForm, form_errors
from studies.models import RaterSession, Study, Trial


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def image_url(token: str) -> str:
    return reverse("studies:image", kwargs={"token": token})


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


@csrf_exempt
@require_POST
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
def session_next(request: HttpRequest, token: str) -> JsonResponse:
    session = access.get_rater_session_by_bearer(request)
    if session is None or session.token != token:
        return _error(401, "send the session token as 'Authorization: Bearer <token>'")
    try:
        pending = services.trials_pending(session=session)
    except services.NotAdmitted as exc:
        return _error(403, str(exc))
    except services.StudyNotOpen as exc:
        return _error(409, str(exc))
    if not pending:
        session.refresh_from_db()
        return JsonResponse(finished_payload(session))
    payload = trial_payload(pending[0])
    if len(pending) > 1:
        payload["next"] = trial_payload(pending[1])
    return JsonResponse(payload)


@csrf_exempt
@require_POST
def trial_vote(request: HttpRequest, trial_id: uuid.UUID) -> JsonResponse:
    session = access.get_rater_session_by_bearer(request)
    if session is None:
        return _error(401, "send the session token as 'Authorization: Bearer <token>'")
    body = _json_body(request)
    if body is None:
        return _error(400, "the body must be a JSON object")
    form = VoteForm(body)
    if not form.is_valid():
        return _error(400, form_errors(form))
    try:
        vote, created = services.vote_record(
            session=session, trial_id=trial_id, **form.cleaned_data
        )
    except (services.TrialNotIssued, services.NotAdmitted) as exc:
        return _error(403, str(exc))
    except services.VoteConflict as exc:
        return _error(409, str(exc))
    except services.ServiceError as exc:
        return _error(400, str(exc))
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
