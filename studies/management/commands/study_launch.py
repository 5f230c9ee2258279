"""Open a study to raters (from draft or paused)."""

from __future__ import annotations

from studies.management.status_command import StatusCommand
from studies.models import StudyStatus


class Command(StatusCommand):
    help = "Open a study to raters (from draft or paused)."
    status = StudyStatus.OPEN
