"""Write a study's votes.csv and conditions.csv (docs/formats.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import selectors
from studies.models import Study


def export_study(study: Study, out_dir: Path) -> tuple[Path, Path]:
    """Write DIR/votes.csv and DIR/conditions.csv; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    votes_path = out_dir / "votes.csv"
    conditions_path = out_dir / "conditions.csv"
    safe = selectors.neutralise_formulas
    safe(selectors.votes_frame(study)).to_csv(votes_path, index=False)
    safe(selectors.conditions_frame(study)).to_csv(conditions_path, index=False)
    return votes_path, conditions_path


class Command(BaseCommand):
    help = "Export a study's votes and conditions as CSV files for `python -m analysis fit`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--out", required=True, type=Path, help="Directory to write into.")

    def handle(self, *args: Any, **options: Any) -> str:
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no study with slug {options['slug']!r}")
        votes_path, conditions_path = export_study(study, options["out"])
        n_votes = sum(1 for _ in votes_path.open(encoding="utf-8")) - 1
        return f"Wrote {n_votes} votes to {votes_path} and the conditions to {conditions_path}."
