"""simulate_raters: simulated observers through the real rater API over HTTP."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from studies.models import RaterSession, Stimulus, Study, Vote

pytestmark = pytest.mark.django_db(transaction=True)


def _rehearse(live_server: Any, slug: str, *args: str) -> str:
    out = io.StringIO()
    call_command("simulate_raters", slug, "--base-url", live_server.url, *args, stdout=out)
    return out.getvalue()


def _higher_truth_chosen(metric: str) -> float:
    chosen = 0
    votes = list(Vote.objects.select_related("trial__left", "trial__right"))
    for vote in votes:
        left, right = vote.trial.left.metrics[metric], vote.trial.right.metrics[metric]
        better = "left" if left > right else "right"
        chosen += vote.choice == better
    return chosen / len(votes)


def test_simulated_raters_vote_through_the_api_as_their_truth_says(
    live_server: Any, make_study: Any
) -> None:
    study = make_study(slug="rehearsal", trials_per_session=6)
    output = _rehearse(
        live_server,
        study.slug,
        "--raters",
        "8",
        "--votes-per-rater",
        "6",
        "--truth-metric",
        "psnr_rgb",
        "--truth-scale",
        "400",
        "--seed",
        "3",
    )
    assert "8 simulated raters sent 48 votes" in output
    assert Vote.objects.count() == 48
    assert RaterSession.objects.filter(status="completed").count() == 8
    # A 1 dB better PSNR is 400 Elo (91% preference): nearly every vote agrees.
    assert _higher_truth_chosen("psnr_rgb") >= 0.85


def test_raters_who_always_lapse_answer_at_random(live_server: Any, make_study: Any) -> None:
    study = make_study(slug="lapse", trials_per_session=6)
    _rehearse(
        live_server,
        study.slug,
        "--raters",
        "20",
        "--votes-per-rater",
        "6",
        "--lapse",
        "1",
        "--truth-metric",
        "psnr_rgb",
        "--truth-scale",
        "400",
    )
    share = _higher_truth_chosen("psnr_rgb")
    # 120 coin flips: within 4 standard deviations of one half.
    assert abs(share - 0.5) < 4 * (0.25 / 120) ** 0.5


def test_it_refuses_a_study_that_screens_its_raters(live_server: Any, make_study: Any) -> None:
    study = make_study(slug="screened", screening_required=True)
    with pytest.raises(CommandError, match="screens its raters"):
        _rehearse(live_server, study.slug, "--raters", "1", "--votes-per-rater", "1")
    assert not Vote.objects.exists()


def test_it_names_a_missing_truth_metric(live_server: Any, make_study: Any) -> None:
    study = make_study(slug="nometric")
    Stimulus.objects.filter(condition__study=study, condition__kind="study").update(metrics={})
    with pytest.raises(CommandError, match="stimuli without the metric 'ssimulacra2'"):
        _rehearse(live_server, study.slug, "--raters", "1", "--votes-per-rater", "1")


def test_a_closed_study_is_refused(live_server: Any, make_study: Any) -> None:
    study = make_study(slug="shut")
    Study.objects.filter(pk=study.pk).update(status="closed")
    with pytest.raises(CommandError, match="is closed; launch it first"):
        _rehearse(live_server, study.slug, "--raters", "1", "--votes-per-rater", "1")


def test_an_active_study_is_rehearsed_through_its_refreshes(
    live_server: Any, make_study: Any, run_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/rehearsal.md: balanced trials until the first refresh, which the worker runs;
    then the planner chooses the trials of raters asking at once."""
    from analysis.active import ActivePlanner
    from studies.models import PlannerRefresh

    study = make_study(
        slug="rehearse-active",
        trials_per_session=6,
        sampling_strategy="active",
        refresh_every=24,
        target_halfwidth=5.0,
    )
    args = ("--votes-per-rater", "6", "--truth-metric", "psnr_rgb", "--truth-scale", "400")
    _rehearse(live_server, study.slug, "--raters", "4", "--seed", "1", *args)
    refresh = PlannerRefresh.objects.get(study=study)
    run_worker()
    refresh.refresh_from_db()
    assert refresh.status == "succeeded", refresh.error
    assert refresh.summary["forecast"]["strategy"] == "active"

    choices: list[int] = []
    original = ActivePlanner.choose

    def counted(self: ActivePlanner, **kwargs: Any) -> Any:
        choices.append(1)
        return original(self, **kwargs)

    monkeypatch.setattr(ActivePlanner, "choose", counted)
    output = _rehearse(
        live_server, study.slug, "--raters", "4", "--seed", "2", "--concurrency", "4", *args
    )
    assert "4 simulated raters sent 24 votes" in output
    assert Vote.objects.filter(trial__session__study=study).count() == 48
    assert len(choices) == 24  # every trial of the new raters came from the planner
