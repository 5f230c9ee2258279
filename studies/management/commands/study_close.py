"""Close a study for good."""

from __future__ import annotations

from studies.management.status_command import StatusCommand
from studies.models import StudyStatus


class Command(StatusCommand):
    help = "Close a study for good."
    status = StudyStatus.CLOSED
