"""Writes of the screening app."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from screening.models import DisplayCheck
from screening.rules import DisplayReport, judge_display
from studies.models import RaterSession
from studies.services import session_mark_screened


def shown_size(session: RaterSession) -> tuple[int, int]:
    """The largest image or crop the session's study shows, in image pixels."""
    study = session.study
    largest = study.source_images.aggregate(w=Max("width"), h=Max("height"))
    return min(largest["w"] or 0, study.crop_size), min(largest["h"] or 0, study.crop_size)


@transaction.atomic
def display_check_record(*, session: RaterSession, report: DisplayReport) -> DisplayCheck:
    """Store a display report and the verdict; an accepted display admits the session.

    In this version the display check is the whole screening; colour-vision
    and artifact-detection tests are added in front of it.
    """
    width, height = shown_size(session)
    verdict = judge_display(
        report, shown_width=width, shown_height=height, panels=session.study.mode.panels
    )
    check = DisplayCheck.objects.create(
        session=session,
        device_pixel_ratio=report.device_pixel_ratio,
        viewport_width=report.viewport_width,
        viewport_height=report.viewport_height,
        screen_width=report.screen_width,
        screen_height=report.screen_height,
        color_depth=report.color_depth,
        accepted=verdict.accepted,
        reason=verdict.reason,
    )
    if verdict.accepted:
        session_mark_screened(session=session)
    return check
