"""Write a study's reproducible bundle (a zip; see docs/bundle.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.bundle import build_bundle
from studies.models import Fit, Study


class Command(BaseCommand):
    help = "Write the study's bundle: spec, stimuli manifest, votes, exclusions, fit and results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--out", required=True, type=Path, help="The zip file to write.")
        parser.add_argument(
            "--fit", type=int, help="Fit number (default: the latest that succeeded)."
        )

    def handle(self, *args: Any, **options: Any) -> str:
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no study with slug {options['slug']!r}")
        fits = study.fits.filter(status=Fit.Status.SUCCEEDED, fast=False)
        fit = fits.filter(pk=options["fit"]).first() if options["fit"] else fits.first()
        if fit is None:
            raise CommandError(f"study {study.slug!r} has no successful full fit to bundle")
        try:
            data = build_bundle(study, fit)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        options["out"].parent.mkdir(parents=True, exist_ok=True)
        options["out"].write_bytes(data)
        return (
            f"Wrote {options['out']} ({len(data) // 1024} KiB): study {study.slug!r}, fit {fit.pk}."
        )
