"""Fit a study's votes (excluded raters left out) and write the report."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import services
from studies.models import Fit, Study


class Command(BaseCommand):
    help = "Fit a study's votes now (or queue the fit for the task worker with --background)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--seed", type=int, default=services.DEFAULT_FIT_SEED)
        parser.add_argument("--fast", action="store_true", help="MAP + Laplace, in seconds.")
        parser.add_argument("--background", action="store_true", help="Queue it as a task.")

    def handle(self, *args: Any, **options: Any) -> str:
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no study with slug {options['slug']!r}")
        if options["background"]:
            fit = services.fit_request(study=study, seed=options["seed"], fast=options["fast"])
            return f"Queued fit {fit.pk} of {study.slug!r} for the task worker."
        fit = Fit.objects.create(
            study=study,
            anchor_codec=study.anchor_codec,
            seed=options["seed"],
            fast=options["fast"],
        )
        fit = services.fit_run(fit_id=fit.pk)
        if fit.status != Fit.Status.SUCCEEDED:
            raise CommandError(f"fit {fit.pk} failed: {fit.error}")
        rows = ", ".join(
            f"{r['codec']} {r['bd_rate']:+.1f}%"
            if r["bd_rate"] is not None
            else f"{r['codec']} n/a"
            for r in fit.summary.get("bd_rate", [])
        )
        return (
            f"Fit {fit.pk} of {study.slug!r} ({fit.n_votes} votes): {rows}; "
            f"outputs in MEDIA_ROOT/{fit.output_dir}"
        )
