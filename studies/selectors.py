"""Reads that span relations: the study's votes and conditions as plain tables.

These produce exactly the public formats of docs/formats.md (votes.csv,
conditions.csv), as pandas DataFrames, for the export command and for fits.
"""

from __future__ import annotations

import pandas as pd
from django.db.models import Count, Q

from studies.models import ConditionKind, RaterSession, Stimulus, Study, Vote

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
        .values_list(
            "condition__name", "condition__codec", "source_image__name", "bpp", "metrics"
        )
    )
    metric_names = sorted({name for *_, metrics in rows for name in metrics})
    records = [
        (*row, *(metrics.get(name) for name in metric_names)) for *row, metrics in rows
    ]
    columns = [*CONDITIONS_EXPORT_COLUMNS, *metric_names]
    return pd.DataFrame.from_records(records, columns=columns)


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
