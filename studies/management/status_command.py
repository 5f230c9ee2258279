"""The shared shape of study_launch, study_pause and study_close."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import services
from studies.models import Study, StudyStatus


class StatusCommand(BaseCommand):
    """Set a study's status; subclasses name the status."""

    status: StudyStatus

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: Any, **options: Any) -> str:
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no study with slug {options['slug']!r}")
        try:
            study = services.study_set_status(study=study, status=self.status)
        except services.ServiceError as exc:
            raise CommandError(str(exc)) from exc
        return f"Study {study.slug!r} is {study.status}."
