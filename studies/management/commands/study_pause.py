"""Pause a study: no new raters or trials; issued trials can still be answered."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import services
from studies.models import Study, StudyStatus


class Command(BaseCommand):
    help = "Pause a study: no new raters or trials; issued trials can still be answered."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: Any, **options: Any) -> str:
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no study with slug {options['slug']!r}")
        try:
            study = services.study_set_status(study=study, status=StudyStatus.PAUSED)
        except services.ServiceError as exc:
            raise CommandError(str(exc)) from exc
        return f"Study {study.slug!r} is {study.status}."
