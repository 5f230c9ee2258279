"""Fits of a study's votes, run as background tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studies import selectors
from studies.models import Fit, Study

# Seed of a fit requested without one: fixed, so that two fits of the same votes
# give the same numbers.
DEFAULT_FIT_SEED = 20260101


def fit_request(
    *,
    study: Study,
    requested_by: Any = None,
    seed: int = DEFAULT_FIT_SEED,
    fast: bool = False,
) -> Fit:
    """Queue a fit of the study's votes as a background task.

    ``fast`` asks for the MAP + Laplace approximation (seconds, for previews)
    instead of the full posterior.
    """
    from studies.tasks import run_fit

    with transaction.atomic():
        fit = Fit.objects.create(
            study=study,
            requested_by=requested_by,
            anchor_codec=study.anchor_codec,
            seed=seed,
            fast=fast,
        )

        def enqueue() -> None:
            result = run_fit.enqueue(fit.pk)
            Fit.objects.filter(pk=fit.pk).update(task_id=str(result.id))

        transaction.on_commit(enqueue)
    return fit


def fit_run(*, fit_id: int) -> Fit:
    """Run a queued fit: export the votes, fit, write the outputs, record the result.

    The votes of excluded raters are left out, and the fit records whose. The
    exact inputs (all votes, the exclusions, the conditions) are written beside
    the outputs, under ``inputs/``, so the fit can be re-run without the
    database (see the study bundle).

    Called by the background task. A failure is recorded on the fit with its
    message; problems with the data (no votes yet, say) end the fit as failed
    without raising, anything unexpected is raised again after being recorded.
    """
    # The numerical stack is heavy; only the worker process needs it.
    from analysis.fit import fit_study, write_outputs
    from analysis.io import InputError
    from analysis.laplace import LaplaceError

    with transaction.atomic():
        fit = Fit.objects.select_for_update(of=("self",)).select_related("study").get(pk=fit_id)
        if fit.status != Fit.Status.QUEUED:
            return fit  # already run (a retried task)
        fit.status = Fit.Status.RUNNING
        fit.started_at = timezone.now()
        fit.save(update_fields=["status", "started_at"])

    study = fit.study
    all_votes = selectors.votes_frame(study)
    exclusions = selectors.exclusions_frame(study)
    fit.excluded_raters = sorted(exclusions["rater"])
    votes = all_votes[~all_votes["rater"].isin(fit.excluded_raters)]
    conditions = selectors.conditions_frame(study)
    relative_dir = f"fits/{study.slug}/{fit.pk}"
    out_dir = Path(settings.MEDIA_ROOT) / relative_dir
    try:
        if votes.empty:
            raise InputError("votes", None, "the study has no votes yet (after exclusions)")
        # The same call as `python -m analysis fit ... --exclude-raters` on the bundle.
        result = fit_study(
            all_votes,
            conditions,
            anchor=fit.anchor_codec,
            seed=fit.seed,
            fast=fit.fast,
            exclude_raters=fit.excluded_raters,
        )
        write_outputs(result, out_dir)
        inputs = out_dir / "inputs"
        inputs.mkdir(exist_ok=True)
        all_votes.to_csv(inputs / "votes.csv", index=False)
        selectors.neutralise_formulas(exclusions).to_csv(inputs / "exclusions.csv", index=False)
        conditions.to_csv(inputs / "conditions.csv", index=False)
    except (InputError, LaplaceError) as exc:
        _fit_fail(fit, str(exc), n_votes=len(votes))
        return fit
    except Exception as exc:
        _fit_fail(fit, f"{type(exc).__name__}: {exc}", n_votes=len(votes))
        raise
    fit.status = Fit.Status.SUCCEEDED
    fit.finished_at = timezone.now()
    fit.n_votes = len(votes)
    fit.output_dir = relative_dir
    fit.summary = {
        "bd_rate": json.loads(result.bd_rate.to_json(orient="records")),
        "elo": json.loads(result.elo.to_json(orient="records")),
        "diagnostics": result.diagnostics,
    }
    fit.save(
        update_fields=[
            "status",
            "finished_at",
            "n_votes",
            "output_dir",
            "summary",
            "excluded_raters",
        ]
    )
    from studies.services.planning import study_apply_stopping_rule

    bd = result.bd_rate
    study_apply_stopping_rule(
        study=study,
        halfwidths={
            str(codec): (float(hi) - float(lo)) / 2.0
            for codec, lo, hi in zip(bd["codec"], bd["bd_rate_lo"], bd["bd_rate_hi"], strict=True)
        },
        counted_votes=len(all_votes),
        source=f"fit #{fit.pk}",
    )
    return fit


def _fit_fail(fit: Fit, message: str, *, n_votes: int) -> None:
    fit.status = Fit.Status.FAILED
    fit.finished_at = timezone.now()
    fit.error = message
    fit.n_votes = n_votes
    fit.save(update_fields=["status", "finished_at", "error", "n_votes", "excluded_raters"])
