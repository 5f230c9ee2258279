"""Reads that span relations: the study's votes and conditions as plain tables.

These produce exactly the public formats of docs/formats.md (votes.csv,
conditions.csv), as pandas DataFrames, for the export command and for fits.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.db.models import Count, Q

from studies.models import (
    ConditionKind,
    Exclusion,
    PlannerRefresh,
    RaterSession,
    Stimulus,
    Study,
    Trial,
    Vote,
)

VOTES_EXPORT_COLUMNS = [
    "rater",
    "image",
    "condition_a",
    "condition_b",
    "choice",
    "golden",
    "response_ms",
    "flips",
    "session",
    "created_at",
    "crop_x",
    "crop_y",
    "crop_width",
    "crop_height",
]
CONDITIONS_EXPORT_COLUMNS = ["condition", "codec", "image", "bpp"]

# Votes are stored by side; in the exported table condition_a is the stimulus
# that was on the left, so position bias can be studied from the file alone.
_CHOICE_TO_EXPORT = {Vote.Choice.LEFT: "a", Vote.Choice.RIGHT: "b", Vote.Choice.TIE: "tie"}


def votes_frame(study: Study) -> pd.DataFrame:
    """All votes of a study, one row per vote, in the votes.csv format.

    Golden trials are included (``golden`` = 1, conditions ``golden-reference``
    and ``golden-degraded``); practice trials are not. Raters appear under a
    pseudonym (``r<number>``), never under their recruitment-platform id.
    """
    rows = (
        Vote.objects.filter(trial__session__study=study, trial__is_practice=False)
        .order_by("created_at", "pk")
        .values_list(
            "trial__session__rater_id",
            "trial__source_image__name",
            "trial__left__condition__name",
            "trial__right__condition__name",
            "choice",
            "trial__is_golden",
            "response_ms",
            "flips",
            "trial__session_id",
            "created_at",
            "trial__crop_x",
            "trial__crop_y",
            "trial__crop_width",
            "trial__crop_height",
        )
    )
    records = [
        {
            "rater": f"r{rater_id}",
            "image": image,
            "condition_a": left,
            "condition_b": right,
            "choice": _CHOICE_TO_EXPORT[Vote.Choice(choice)],
            "golden": int(golden),
            "response_ms": response_ms,
            "flips": flips,
            "session": f"s{session_id}",
            "created_at": created_at.isoformat(),
            "crop_x": crop_x,
            "crop_y": crop_y,
            "crop_width": crop_width,
            "crop_height": crop_height,
        }
        for (
            rater_id,
            image,
            left,
            right,
            choice,
            golden,
            response_ms,
            flips,
            session_id,
            created_at,
            crop_x,
            crop_y,
            crop_width,
            crop_height,
        ) in rows
    ]
    return pd.DataFrame.from_records(records, columns=VOTES_EXPORT_COLUMNS)


def conditions_frame(study: Study) -> pd.DataFrame:
    """One row per study condition and source image, with the stimulus's bpp.

    Objective metrics of the stimuli (codecs_adapter.compute_metrics: psnr_rgb,
    psnr_y, ssim, ms_ssim, ssimulacra2), where computed, follow as extra columns.
    """
    rows = list(
        Stimulus.objects.filter(condition__study=study, condition__kind=ConditionKind.STUDY)
        .order_by("condition__codec", "condition__rate_index", "source_image__name")
        .values_list("condition__name", "condition__codec", "source_image__name", "bpp", "metrics")
    )
    metric_names = sorted({name for *_, metrics in rows for name in metrics})
    records = [(*row, *(metrics.get(name) for name in metric_names)) for *row, metrics in rows]
    columns = [*CONDITIONS_EXPORT_COLUMNS, *metric_names]
    return pd.DataFrame.from_records(records, columns=columns)


def comparison_appearances(
    study: Study, *, up_to: int
) -> tuple[dict[int, int], dict[int, int], int]:
    """Comparison trials (not golden, not practice) of the study with ids up to ``up_to``:
    per condition id how many showed it, per source image id how many there are, and
    their number."""
    counts: Counter[int] = Counter()
    per_image: Counter[int] = Counter()
    n_trials = 0
    for image, left, right in Trial.objects.filter(
        session__study=study, is_golden=False, is_practice=False, pk__lte=up_to
    ).values_list("source_image_id", "left__condition_id", "right__condition_id"):
        counts[left] += 1
        counts[right] += 1
        per_image[image] += 1
        n_trials += 1
    return dict(counts), dict(per_image), n_trials


def latest_refresh(study: Study) -> PlannerRefresh | None:
    """The study's latest successful refresh (interval widths, forecast), if any."""
    return (
        PlannerRefresh.objects.filter(study=study, status=PlannerRefresh.Status.SUCCEEDED)
        .defer("planner")
        .order_by("-pk")
        .first()
    )


def study_progress(study: Study) -> dict[str, int]:
    """Counts for the researcher's study page."""
    sessions = RaterSession.objects.filter(study=study).aggregate(
        total=Count("pk"),
        completed=Count("pk", filter=Q(status=RaterSession.Status.COMPLETED)),
        failed=Count("pk", filter=Q(status=RaterSession.Status.FAILED_ATTENTION)),
    )
    return {
        "sessions": sessions["total"],
        "sessions_completed": sessions["completed"],
        "sessions_failed_attention": sessions["failed"],
        "votes": Vote.objects.filter(trial__session__study=study, trial__is_practice=False).count(),
        "conditions": study.conditions.filter(kind=ConditionKind.STUDY).count(),
        "images": study.source_images.count(),
    }


EXCLUSIONS_EXPORT_COLUMNS = ["rater", "reason", "excluded_by", "created_at"]


def exclusions_frame(study: Study) -> pd.DataFrame:
    """The study's excluded raters (pseudonyms as in votes.csv), who excluded them and why."""
    rows = Exclusion.objects.filter(study=study).order_by("rater_id")
    records = [
        {
            "rater": f"r{e.rater_id}",
            "reason": e.reason,
            "excluded_by": e.excluded_by.get_username(),
            "created_at": e.created_at.isoformat(),
        }
        for e in rows.select_related("excluded_by")
    ]
    return pd.DataFrame.from_records(records, columns=EXCLUSIONS_EXPORT_COLUMNS)


def votes_per_condition_and_image(study: Study) -> dict[str, Any]:
    """How often each study condition was judged on each image (both sides counted)."""
    conditions = list(
        study.conditions.filter(kind=ConditionKind.STUDY).order_by("codec", "rate_index")
    )
    images = list(study.source_images.order_by("name").values_list("name", flat=True))
    counts: Counter[tuple[str, str]] = Counter()
    for image, left, right in Vote.objects.filter(
        trial__session__study=study, trial__is_golden=False, trial__is_practice=False
    ).values_list(
        "trial__source_image__name", "trial__left__condition__name", "trial__right__condition__name"
    ):
        counts[(left, image)] += 1
        counts[(right, image)] += 1
    return {
        "images": images,
        "rows": [
            {"condition": c.name, "counts": [counts[(c.name, image)] for image in images]}
            for c in conditions
        ],
    }


def pair_coverage(study: Study) -> dict[str, Any]:
    """Votes per pair of study conditions, over all images (a symmetric matrix)."""
    names = list(
        study.conditions.filter(kind=ConditionKind.STUDY)
        .order_by("codec", "rate_index")
        .values_list("name", flat=True)
    )
    counts: Counter[frozenset[str]] = Counter(
        frozenset(pair)
        for pair in Vote.objects.filter(
            trial__session__study=study, trial__is_golden=False, trial__is_practice=False
        ).values_list("trial__left__condition__name", "trial__right__condition__name")
    )
    return {
        "conditions": names,
        "rows": [
            {
                "condition": a,
                "counts": [None if a == b else counts[frozenset((a, b))] for b in names],
            }
            for a in names
        ],
    }


def _fit_rater_estimates(fit: Any) -> dict[str, dict[str, Any]]:
    """The model's view of each rater from a fit's raters.csv (empty without one)."""
    if fit is None or not fit.output_dir:
        return {}
    path = Path(settings.MEDIA_ROOT) / fit.output_dir / "raters.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype={"rater": str})
    return {
        str(row["rater"]): {str(k): v for k, v in row.items()}
        for row in table.to_dict(orient="records")
    }


def rater_table(study: Study, *, fit: Any = None) -> list[dict[str, Any]]:
    """Per rater of the study: votes, golden accuracy, speed, side preference, exclusion,
    and — from ``fit``'s raters.csv — the estimated random-answer probability and the
    analysis's suggestion to exclude."""
    estimates = _fit_rater_estimates(fit)
    excluded = {
        e.rater_id: e for e in Exclusion.objects.filter(study=study).select_related("excluded_by")
    }
    rows = []
    for session in RaterSession.objects.filter(study=study).select_related("rater").order_by("pk"):
        votes = list(
            Vote.objects.filter(trial__session=session, trial__is_practice=False).select_related(
                "trial__left__condition"
            )
        )
        golden = [v for v in votes if v.trial.is_golden]
        comparisons = [v for v in votes if not v.trial.is_golden]
        times = sorted(v.response_ms for v in votes)
        exclusion = excluded.get(session.rater_id)
        rows.append(
            {
                "rater": f"r{session.rater_id}",
                "status": session.get_status_display(),
                "votes": len(votes),
                "golden": len(golden),
                "golden_right": sum(v.choice == v.trial.golden_answer for v in golden),
                "median_ms": times[len(times) // 2] if times else None,
                "left_share": (
                    sum(v.choice == Vote.Choice.LEFT for v in comparisons) / len(comparisons)
                    if comparisons
                    else None
                ),
                "excluded": exclusion,
                "estimate": estimates.get(f"r{session.rater_id}"),
            }
        )
    return rows


# Spreadsheets run a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot run as spreadsheet formulas.

    Text that starts with ``= + - @`` (or a tab or carriage return) gets a
    leading apostrophe, as OWASP recommends for CSV exports; numbers are left
    alone. Identifiers (image, condition and codec names, pseudonyms) never
    start with these, so only free text such as exclusion reasons changes.
    """

    def safe(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
            return "'" + value
        return value

    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].map(safe)
    return out
