"""Pause a study: no new raters or trials; issued trials can still be answered."""

from __future__ import annotations

from studies.management.status_command import StatusCommand
from studies.models import StudyStatus


class Command(StatusCommand):
    help = "Pause a study: no new raters or trials; issued trials can still be answered."
    status = StudyStatus.PAUSED
