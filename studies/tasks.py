"""Background tasks (Django's Tasks framework; run by ``manage.py db_worker``)."""

from __future__ import annotations

from django.tasks import task

from studies import services


@task()
def run_fit(fit_id: int) -> str:
    """Fit a study's votes; the Fit row records progress, outcome and outputs."""
    fit = services.fit_run(fit_id=fit_id)
    return fit.status


@task()
def build_study(build_id: int) -> str:
    """Encode (and import) a study's stimuli from its spec; StudyBuild records progress."""
    from studies.services.specs import study_build_run

    return study_build_run(build_id=build_id).status


@task()
def refresh_planner(refresh_id: int) -> str:
    """Refresh a study's posterior: planner, interval widths, forecast, stopping rule."""
    from studies.services.planning import planner_refresh_run

    return planner_refresh_run(refresh_id=refresh_id).status
