"""Create a study from a definition file; its stimuli are built by a background task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import services
from studies.models import StudyBuild
from studies.services.specs import study_build_run, study_create_from_spec
from studies.spec import SpecError, read_spec


class Command(BaseCommand):
    help = "Create a study from a TOML definition file (docs/study-spec.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("spec", type=Path, help="The study definition file.")
        parser.add_argument("--owner", required=True, help="Username of the researcher.")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Build the stimuli here and now instead of in the task worker.",
        )

    def handle(self, *args: Any, **options: Any) -> str:
        try:
            spec = read_spec(options["spec"])
        except SpecError as exc:
            raise CommandError(f"the spec has problems:\n{exc}") from exc
        owner = get_user_model().objects.filter(username=options["owner"]).first()
        if owner is None:
            raise CommandError(f"no user {options['owner']!r}")
        try:
            study = study_create_from_spec(
                spec=spec, owner=owner, source_dir=options["spec"].resolve().parent
            )
        except services.ServiceError as exc:
            raise CommandError(str(exc)) from exc
        build = StudyBuild.objects.get(study=study)
        if not options["wait"]:
            return (
                f"Created draft study {study.slug!r}; its stimuli are built by the task worker "
                f"(manage.py db_worker); progress on /studies/{study.slug}/."
            )
        build = study_build_run(build_id=build.pk)
        if build.status != StudyBuild.Status.SUCCEEDED:
            raise CommandError(f"the build of {study.slug!r} failed:\n{build.message}")
        return f"Created draft study {study.slug!r}: {build.message}. Launch it with study_launch."
