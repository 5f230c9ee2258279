"""Rehearse a study: simulated raters answer through the real rater API over HTTP."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.models import Study
from studies.rehearsal import (
    DEFAULT_TRUTH_METRIC,
    DEFAULT_TRUTH_SCALE,
    RehearsalError,
    run_rehearsal,
)


class Command(BaseCommand):
    help = (
        "Send simulated raters through a running site's rater API; their judgements follow "
        "a known truth from the stimuli's objective metrics (docs/rehearsal.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--raters", type=int, required=True)
        parser.add_argument("--votes-per-rater", type=int, required=True)
        parser.add_argument("--lapse", type=float, default=0.0, help="Share of random answers.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="The running site (make demo)."
        )
        parser.add_argument("--truth-metric", default=DEFAULT_TRUTH_METRIC)
        parser.add_argument(
            "--truth-scale", type=float, default=DEFAULT_TRUTH_SCALE, help="Elo per metric unit."
        )
        parser.add_argument("--concurrency", type=int, default=4)

    def handle(self, *args: Any, **options: Any) -> str:
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no study with slug {options['slug']!r}")

        def progress(done: int, total: int) -> None:
            if done == total or done % max(total // 10, 1) == 0:
                self.stdout.write(f"  {done}/{total} raters done")

        try:
            result = run_rehearsal(
                study=study,
                base_url=options["base_url"],
                raters=options["raters"],
                votes_per_rater=options["votes_per_rater"],
                lapse=options["lapse"],
                seed=options["seed"],
                metric=options["truth_metric"],
                scale=options["truth_scale"],
                concurrency=options["concurrency"],
                progress=progress,
            )
        except RehearsalError as exc:
            raise CommandError(str(exc)) from exc
        return (
            f"{result.raters} simulated raters sent {result.votes} votes to {study.slug!r} "
            f"({result.finished_sessions} sessions finished, {result.retries} retries)."
        )
