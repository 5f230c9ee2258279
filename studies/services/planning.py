"""Background refreshes of a study's posterior: the active planner, the interval widths,
the forecast of the votes still needed, and the stopping rule.

A refresh is requested by the vote that brings ``Study.refresh_every`` counted votes
since the previous one (:func:`refresh_if_due`; at most one queued or running per
study, which the database enforces), and run by a background task
(:func:`planner_refresh_run`): the fast Laplace fit of the study's votes, an
``analysis.active.ActivePlanner`` built from it, the forecast of
``analysis.forecast.forecast_votes``, then the stopping rule. No fit ever runs in a
request: issuing a trial only loads the stored planner, once per process and version
(:func:`loaded_planner`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from studies import selectors
from studies.models import PlannerRefresh, Study, StudyStatus, TaskStatus
from studies.services import rating_sql
from studies.services.lifecycle import study_set_status

if TYPE_CHECKING:
    from analysis.active import ActivePlanner

logger = logging.getLogger(__name__)

# A refresh still queued or running after this long is taken for lost (no worker, or a
# worker killed mid-fit): it is marked failed and the next due vote requests another.
REFRESH_STALE_AFTER = timedelta(minutes=10)
# Model of the refreshes' Laplace fit: ``bt`` is the fastest, and BD-rates barely
# depend on the model (docs/analysis.md); the full fits keep the study's model.
REFRESH_MODEL = "bt"
# Refreshes of a study whose stored planner is kept; older ones keep their summary
# only. More than one, so a process that has just read a version's id can still load
# it while the next refresh is stored.
PLANNERS_KEPT = 3
# Planners kept loaded per process (a few studies run at once).
PLANNERS_CACHED = 8


# --- Requesting a refresh -----------------------------------------------------------


def refresh_if_due(*, study: Study) -> PlannerRefresh | None:
    """Request a refresh when ``refresh_every`` counted votes have arrived since the last.

    Called after every new vote of a study that refreshes (``Study.needs_refreshes``).
    One bounded statement per vote; the request itself happens once per
    ``refresh_every`` votes, and of concurrent votes that find it due only one creates
    the refresh (the others meet the database's one-in-flight constraint).

    Returns
    -------
    PlannerRefresh or None
        The refresh requested now, if any.
    """
    due = rating_sql.refresh_due(study.pk, study.refresh_every)
    if not due.due:
        return None
    if due.in_flight is not None:
        stale = timezone.now() - REFRESH_STALE_AFTER
        lost = PlannerRefresh.objects.filter(
            pk=due.in_flight,
            created_at__lt=stale,
            status__in=[TaskStatus.QUEUED, TaskStatus.RUNNING],
        )
        if not lost.update(
            status=TaskStatus.FAILED,
            finished_at=timezone.now(),
            error=f"not finished within {REFRESH_STALE_AFTER}; taken for lost",
        ):
            return None
    return planner_refresh_request(study=study)


def planner_refresh_request(*, study: Study) -> PlannerRefresh | None:
    """Queue a refresh of the study's posterior; None if one is queued or running already."""
    from studies.tasks import refresh_planner

    try:
        with transaction.atomic():
            refresh = PlannerRefresh.objects.create(
                study_id=study.pk, trial_watermark=rating_sql.max_trial_id()
            )

            def enqueue() -> None:
                result = refresh_planner.enqueue(refresh.pk)
                PlannerRefresh.objects.filter(pk=refresh.pk).update(task_id=str(result.id))

            transaction.on_commit(enqueue)
    except IntegrityError:
        return None  # a concurrent vote requested it first
    return refresh


# --- Running it ----------------------------------------------------------------------


def planner_refresh_run(*, refresh_id: int) -> PlannerRefresh:
    """Fit the study's votes (Laplace, ``bt``), store the planner and the forecast, then
    apply the stopping rule. The background task's work.

    Problems with the data (too few votes, a posterior that is not locally Gaussian)
    end the refresh as failed with the message, without raising; issuing then goes on
    with the previous planner, or the balanced rule before the first. Anything
    unexpected is recorded and raised again.
    """
    from analysis.io import InputError
    from analysis.laplace import LaplaceError

    with transaction.atomic():
        refresh = (
            PlannerRefresh.objects.select_for_update(of=("self",))
            .select_related("study")
            .get(pk=refresh_id)
        )
        if refresh.status != TaskStatus.QUEUED:
            return refresh  # already run (a retried task), or taken for lost
        refresh.status = TaskStatus.RUNNING
        refresh.started_at = timezone.now()
        refresh.save(update_fields=["status", "started_at"])
    study = refresh.study
    started = time.perf_counter()
    # The watermark first: trials issued while the votes are read count as pending too
    # (at worst a trial is both fitted and pending, which only spreads the next choices).
    refresh.trial_watermark = rating_sql.max_trial_id()
    appearances, per_image, n_trials = selectors.comparison_appearances(
        study, up_to=refresh.trial_watermark
    )
    refresh.appearances = {str(c): n for c, n in appearances.items()}
    refresh.image_trials = {str(i): n for i, n in per_image.items()}
    refresh.n_trials = n_trials
    all_votes = selectors.votes_frame(study)
    excluded = set(selectors.exclusions_frame(study)["rater"])
    votes = all_votes[~all_votes["rater"].isin(excluded)]
    refresh.n_votes = len(all_votes)
    try:
        if votes.empty:
            raise InputError("votes", None, "the study has no votes yet (after exclusions)")
        planner, summary = _plan(study, votes, selectors.conditions_frame(study))
    except (InputError, LaplaceError, ValueError) as exc:
        _refresh_end(refresh, TaskStatus.FAILED, error=str(exc))
        # The budget needs no fit.
        study_apply_stopping_rule(
            study=study,
            halfwidths={},
            counted_votes=refresh.n_votes,
            source=f"refresh #{refresh.pk}",
        )
        return refresh
    except Exception as exc:
        _refresh_end(refresh, TaskStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    summary["seconds"] = round(time.perf_counter() - started, 3)
    refresh.planner = planner.to_bytes()
    refresh.summary = summary
    _refresh_end(refresh, TaskStatus.SUCCEEDED)
    # The newest refresh wins; an older one finishing late does not replace it.
    Study.objects.filter(pk=study.pk).exclude(planner_id__gt=refresh.pk).update(planner=refresh)
    kept = list(
        PlannerRefresh.objects.filter(study=study, status=TaskStatus.SUCCEEDED)
        .order_by("-pk")
        .values_list("pk", flat=True)[:PLANNERS_KEPT]
    )
    PlannerRefresh.objects.filter(study=study).exclude(pk__in=kept).update(planner=b"")
    study_apply_stopping_rule(
        study=study,
        halfwidths={c["codec"]: c["halfwidth"] for c in summary["codecs"]},
        counted_votes=refresh.n_votes,
        source=f"refresh #{refresh.pk}",
    )
    return refresh


def _refresh_end(refresh: PlannerRefresh, status: TaskStatus, *, error: str = "") -> None:
    refresh.status = status
    refresh.error = error
    refresh.finished_at = timezone.now()
    refresh.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "trial_watermark",
            "appearances",
            "image_trials",
            "n_trials",
            "n_votes",
            "planner",
            "summary",
        ]
    )


def _plan(study: Study, votes: Any, conditions: Any) -> tuple[ActivePlanner, dict[str, Any]]:
    """The planner and the page's summary from the study's votes and conditions."""
    from analysis.active import DEFAULT_TARGET_HALFWIDTH, ActivePlanner, PlannerSettings
    from analysis.fit import condition_points
    from analysis.forecast import forecast_votes
    from analysis.io import check_anchor, validate_conditions, validate_votes
    from analysis.laplace import fit_laplace
    from analysis.model import count_votes, resolve_options

    conditions = validate_conditions(conditions)
    votes = validate_votes(votes, conditions)
    check_anchor(conditions, study.anchor_codec)
    data = count_votes(votes, conditions)
    fit = fit_laplace(
        data, options=resolve_options(data, model=REFRESH_MODEL), random_seed=study.seed
    )
    points = condition_points(conditions, data.conditions)
    condition_id = dict(study.conditions.filter(name__in=data.conditions).values_list("name", "pk"))
    target = study.target_halfwidth or DEFAULT_TARGET_HALFWIDTH
    n_comparisons = int((~votes["golden"]).sum())
    planner = ActivePlanner.from_laplace(
        fit,
        points,
        anchor=study.anchor_codec,
        condition_ids=[condition_id[name] for name in data.conditions],
        settings=PlannerSettings(target_halfwidth=target),
        n_votes=n_comparisons,
        random_seed=study.seed,
    )
    forecast = forecast_votes(planner, strategy=study.sampling_strategy, random_seed=study.seed)
    codecs = [
        {
            "codec": str(codec),
            "bd_rate": _finite(planner.bd_rate[c]),
            "halfwidth": _finite(planner.halfwidth[c]),
            "met": bool(math.isfinite(planner.halfwidth[c]) and planner.halfwidth[c] <= target),
        }
        for c, codec in enumerate(planner.codecs)
    ]
    summary = {
        "computed_at": timezone.now().isoformat(),
        "model": REFRESH_MODEL,
        "converged": bool(fit.converged),
        "n_comparisons": n_comparisons,
        "target_halfwidth": target,
        "target_set": study.target_halfwidth is not None,
        "codecs": codecs,
        "forecast": {
            "strategy": str(forecast.strategy),
            "met": forecast.met,
            "votes": _finite(forecast.votes),
            "votes_lo": _finite(forecast.votes_lo),
            "votes_hi": _finite(forecast.votes_hi),
            "reached_share": forecast.reached_share,
        },
    }
    return planner, summary


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity: None stands for both (no value, out of reach)."""
    value = float(value)
    return value if math.isfinite(value) else None


# --- The stopping rule --------------------------------------------------------------


def stopping_reason(
    *, study: Study, halfwidths: Mapping[str, float | None], counted_votes: int
) -> str | None:
    """Why the study may stop now, or None: every codec's 95% BD-rate half-width is at
    most the target, or the counted votes reached the budget."""
    target = study.target_halfwidth
    if target is not None and halfwidths:
        widths = [w for w in halfwidths.values() if w is not None and math.isfinite(w)]
        if len(widths) == len(halfwidths) and max(widths) <= target:
            return (
                f"every codec's 95% BD-rate half-width is at most {target:g} points "
                f"(largest {max(widths):.2f})"
            )
    budget = study.vote_budget
    if budget is not None and counted_votes >= budget:
        return f"the vote budget of {budget} is reached ({counted_votes} counted votes)"
    return None


def study_apply_stopping_rule(
    *,
    study: Study,
    halfwidths: Mapping[str, float | None],
    counted_votes: int,
    source: str,
) -> Study:
    """Close a study with ``auto_close`` whose stopping rule is met, recording why.

    Called after each refresh and each fit (``source`` names it in the reason). The
    close goes through :func:`studies.services.lifecycle.study_set_status`, so its
    rules stay in one place; a draft or closed study is left alone.
    """
    study.refresh_from_db(fields=["status", "auto_close", "target_halfwidth", "vote_budget"])
    if not study.auto_close or study.status not in {StudyStatus.OPEN, StudyStatus.PAUSED}:
        return study
    reason = stopping_reason(study=study, halfwidths=halfwidths, counted_votes=counted_votes)
    if reason is None:
        return study
    logger.info("closing study %s: %s", study.slug, reason)
    return study_set_status(
        study=study, status=StudyStatus.CLOSED, reason=f"Closed itself after {source}: {reason}."
    )


# --- Loading the planner where trials are issued -------------------------------------


@dataclass(frozen=True)
class LoadedPlanner:
    """A stored planner as issuing uses it."""

    refresh_id: int
    planner: ActivePlanner
    trial_watermark: int
    appearances: dict[int, int]
    image_trials: dict[int, int]
    condition_ids: frozenset[int]


# Keyed by the study's creation time too, as a test database may give a new study (and
# its refreshes) the ids an earlier one had (as rating_sql's stimuli cache).
_PLANNERS: dict[tuple[int, datetime, int], LoadedPlanner] = {}


def loaded_planner(study: Study) -> LoadedPlanner | None:
    """The study's current planner, read and decoded once per process and version;
    None before the first refresh or when it cannot be loaded (issuing then falls back
    to the balanced rule)."""
    if study.planner_id is None:
        return None
    key = (study.pk, study.created_at, study.planner_id)
    if key in _PLANNERS:
        return _PLANNERS[key]
    found = _load(study.planner_id)
    if len(_PLANNERS) >= PLANNERS_CACHED:
        _PLANNERS.clear()
    if found is not None:
        _PLANNERS[key] = found
    return found


def _load(refresh_id: int) -> LoadedPlanner | None:
    from analysis.active import ActivePlanner

    row = (
        PlannerRefresh.objects.filter(pk=refresh_id, status=TaskStatus.SUCCEEDED)
        .values_list("planner", "trial_watermark", "appearances", "image_trials")
        .first()
    )
    if row is None or not row[0]:
        return None
    blob, watermark, appearances, image_trials = row
    try:
        planner = ActivePlanner.from_bytes(bytes(blob))
    except (ValueError, KeyError, OSError) as exc:
        logger.warning("planner of refresh %s cannot be loaded: %s", refresh_id, exc)
        return None
    return LoadedPlanner(
        refresh_id=refresh_id,
        planner=planner,
        trial_watermark=int(watermark),
        appearances={int(c): int(n) for c, n in appearances.items()},
        image_trials={int(i): int(n) for i, n in image_trials.items()},
        condition_ids=frozenset(int(c) for c in planner.condition_ids),
    )
