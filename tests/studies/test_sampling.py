"""Pair scheduling strategies at the service level (issue 8): the rater-level rules of both,
the active planner's refreshes, its fallback, its exploration floor, the stopping rule
and the forecast on the study page."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from analysis.active import ActivePlanner, PlannerSettings
from studies import scheduling, services
from studies.models import PlannerRefresh, RaterSession, Study, StudyStatus, Trial
from studies.services import planning

# The small study's conditions from worst to best (their SSIMULACRA 2 on both images):
# simulated raters pick the better one, so the curves overlap and BD-rates exist.
QUALITY = {"jpeg-r1": 0, "webp-r1": 1, "jpeg-r2": 2, "webp-r2": 3}


def _answer(trial: Trial) -> str:
    left, right = trial.left.condition.name, trial.right.condition.name
    if left not in QUALITY or right not in QUALITY:  # golden: the original wins
        return "left" if trial.golden_answer == "left" else "right"
    return "left" if QUALITY[left] > QUALITY[right] else "right"


def _rate(study: Study, participant: str, *, votes: int | None = None) -> list[Trial]:
    """A rater answers (by the truth) until the session ends or after ``votes`` votes."""
    session, _ = services.rater_session_start(
        study=study, platform="direct", participant=participant
    )
    answered: list[Trial] = []
    while (votes is None or len(answered) < votes) and (
        trial := services.trial_next(session=session)
    ) is not None:
        services.vote_record(
            session=session,
            trial_id=trial.public_id,
            choice=_answer(trial),
            client_vote_id=uuid.uuid4(),
            response_ms=900,
            flips=0,
        )
        answered.append(trial)
    return answered


def _names(study: Study) -> dict[int, str]:
    return dict(study.conditions.values_list("pk", "name"))


def _trials(study: Study) -> list[Trial]:
    return list(
        Trial.objects.filter(session__study=study, is_golden=False, is_practice=False)
        .select_related("left", "right", "session")
        .order_by("pk")
    )


def _assert_rater_rules(study: Study) -> None:
    """Every comparison shows two study conditions on one image; no rater sees a pair
    twice."""
    per_rater: dict[int, list[scheduling.PairKey]] = {}
    for trial in _trials(study):
        assert trial.left.source_image_id == trial.right.source_image_id == trial.source_image_id
        assert trial.left.condition_id != trial.right.condition_id
        key = scheduling.pair_key(
            trial.source_image_id, trial.left.condition_id, trial.right.condition_id
        )
        per_rater.setdefault(trial.session_id, []).append(key)
    for pairs in per_rater.values():
        assert len(pairs) == len(set(pairs))


# --- The rater-level rules, both strategies ---------------------------------------------


def test_balanced_trials_keep_one_image_no_repeats_and_equal_shares(make_study: Any) -> None:
    study = make_study(slug="balanced", trials_per_session=12, seed=3)
    for n in range(3):
        _rate(study, f"p{n}")
    _assert_rater_rules(study)
    shown: Counter[tuple[int, int]] = Counter()
    for trial in _trials(study):
        shown[(trial.source_image_id, trial.left.condition_id)] += 1
        shown[(trial.source_image_id, trial.right.condition_id)] += 1
    # 36 trials over 2 images x 4 conditions: each condition 9 times per image, give or
    # take the last pairs.
    assert max(shown.values()) - min(shown.values()) <= 2, shown


def test_active_trials_keep_the_rater_rules(make_study: Any, store_planner: Any) -> None:
    study = make_study(slug="active-rules", trials_per_session=12, sampling_strategy="active")
    store_planner(study, settings=PlannerSettings(floor=0, exploration=0.0))
    for n in range(3):
        _rate(study, f"p{n}")
    _assert_rater_rules(study)
    # The least used image first, counting the trials since the refresh.
    per_image = Counter(t.source_image_id for t in _trials(study))
    assert max(per_image.values()) - min(per_image.values()) <= 1, per_image
    for session in RaterSession.objects.filter(study=study):
        balance: Counter[int] = Counter()
        for trial in _trials(study):
            if trial.session_id == session.pk:
                balance[trial.left.condition_id] += 1
                balance[trial.right.condition_id] -= 1
        assert all(abs(b) <= 1 for b in balance.values()), balance


# --- Active: the planner, its floor, its fallback ----------------------------------------


def test_an_active_study_issues_balanced_trials_before_its_first_refresh(make_study: Any) -> None:
    balanced = make_study(slug="b", trials_per_session=6, seed=11)
    active = make_study(slug="a", trials_per_session=6, seed=11, sampling_strategy="active")
    assert active.planner_id is None
    for study in (balanced, active):
        _rate(study, "same-rater")
    chosen = {
        study.slug: [
            (t.source_image.name, _names(study)[t.left.condition_id], t.right.condition_id)
            for t in _trials(study)
        ]
        for study in (balanced, active)
    }
    names_b, names_a = _names(balanced), _names(active)
    assert [(i, left, names_b[r]) for i, left, r in chosen["b"]] == [
        (i, left, names_a[r]) for i, left, r in chosen["a"]
    ]


def test_an_active_study_falls_back_to_balanced_when_its_planner_is_missing(
    make_study: Any,
    store_planner: Any,
) -> None:
    study = make_study(slug="lost", trials_per_session=4, sampling_strategy="active")
    refresh = store_planner(study, settings=PlannerSettings())
    PlannerRefresh.objects.filter(pk=refresh.pk).update(planner=b"")
    planning._PLANNERS.clear()
    assert planning.loaded_planner(study) is None
    assert len(_rate(study, "p")) == 4
    _assert_rater_rules(study)


def test_the_floor_pairs_a_condition_below_it_first_counting_trials_since_the_refresh(
    make_study: Any,
    store_planner: Any,
) -> None:
    study = make_study(slug="floor", trials_per_session=2, sampling_strategy="active")
    floor = 4
    # At the refresh, every condition but webp-r2 had been shown often.
    store_planner(
        study,
        settings=PlannerSettings(floor=floor, exploration=0.0),
        appearances={"jpeg-r1": 50, "jpeg-r2": 50, "webp-r1": 50, "webp-r2": 0},
    )
    webp_r2 = study.conditions.get(name="webp-r2").pk
    trials = [t for n in range(4) for t in _rate(study, f"p{n}")]
    with_it = [webp_r2 in (t.left.condition_id, t.right.condition_id) for t in trials]
    # The first `floor` trials (pending since the refresh) bring it up to the floor.
    assert with_it[:floor] == [True] * floor
    assert not all(with_it)


def test_without_a_floor_the_planner_follows_its_scores(
    make_study: Any, store_planner: Any
) -> None:
    study = make_study(slug="no-floor", trials_per_session=2, sampling_strategy="active")
    refresh = store_planner(study, settings=PlannerSettings(floor=0, exploration=0.0))
    trials = [t for n in range(4) for t in _rate(study, f"p{n}")]
    loaded = planning.loaded_planner(study)
    assert loaded is not None and loaded.refresh_id == refresh.pk
    # No pair between the two well-known anchor conditions: it tells nothing about webp.
    jpeg = set(study.conditions.filter(codec="jpeg").values_list("pk", flat=True))
    assert not any({t.left.condition_id, t.right.condition_id} == jpeg for t in trials)


# --- Requesting refreshes -------------------------------------------------------------


def test_a_refresh_is_requested_once_every_refresh_every_counted_votes(make_study: Any) -> None:
    study = make_study(
        slug="refreshes", trials_per_session=4, sampling_strategy="active", refresh_every=6
    )
    _rate(study, "p0", votes=4)
    _rate(study, "p1", votes=1)
    assert not PlannerRefresh.objects.exists()
    _rate(study, "p1", votes=1)  # the 6th counted vote
    first = PlannerRefresh.objects.get()
    assert first.status == "queued"
    _rate(study, "p2")  # due again only 6 votes after the first's watermark
    assert PlannerRefresh.objects.count() == 1
    # A second request while one is in flight is refused by the database.
    assert planning.planner_refresh_request(study=study) is None
    PlannerRefresh.objects.filter(pk=first.pk).update(status="failed")
    _rate(study, "p3", votes=1)
    assert PlannerRefresh.objects.count() == 1  # 4 votes above the watermark so far
    _rate(study, "p3")
    _rate(study, "p4", votes=1)
    assert PlannerRefresh.objects.count() == 2


def test_a_refresh_lost_in_flight_is_replaced(make_study: Any) -> None:
    study = make_study(
        slug="stale", trials_per_session=4, sampling_strategy="active", refresh_every=2
    )
    _rate(study, "p0", votes=2)
    lost = PlannerRefresh.objects.get()
    PlannerRefresh.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - planning.REFRESH_STALE_AFTER - timedelta(seconds=1)
    )
    _rate(study, "p1")
    lost.refresh_from_db()
    assert lost.status == "failed" and "lost" in lost.error
    assert PlannerRefresh.objects.filter(status="queued").count() == 1


# --- The refresh itself -----------------------------------------------------------------


def _refreshed(study: Study) -> PlannerRefresh:
    refresh = PlannerRefresh.objects.filter(status="queued").get(study=study)
    return planning.planner_refresh_run(refresh_id=refresh.pk)


def _forecast_study(make_study: Any) -> tuple[Study, PlannerRefresh]:
    study = make_study(
        slug="forecast",
        trials_per_session=12,
        sampling_strategy="active",
        refresh_every=30,
        target_halfwidth=5.0,
    )
    for n in range(3):
        _rate(study, f"p{n}")
    refresh = _refreshed(study)
    assert refresh.status == "succeeded", refresh.error
    study.refresh_from_db()
    return study, refresh


def test_a_refresh_stores_the_planner_widths_and_forecast_with_the_counts_it_saw(
    make_study: Any,
) -> None:
    study, refresh = _forecast_study(make_study)
    assert study.planner_id == refresh.pk and study.status == StudyStatus.OPEN
    assert refresh.n_votes == 36 and refresh.n_trials == 36
    assert sum(refresh.appearances.values()) == 72
    assert sum(refresh.image_trials.values()) == 36 and len(refresh.image_trials) == 2
    (webp,) = refresh.summary["codecs"]
    assert webp["codec"] == "webp" and webp["halfwidth"] > 5.0 and not webp["met"]
    forecast = refresh.summary["forecast"]
    assert forecast["strategy"] == "active" and forecast["votes"] > 0
    loaded = planning.loaded_planner(study)
    assert loaded is not None and loaded.trial_watermark == refresh.trial_watermark
    assert loaded.planner.n_votes == 36


def test_the_study_page_shows_the_widths_and_the_forecast_with_when_they_were_computed(
    client: Client, owner: Any, make_study: Any
) -> None:
    study, refresh = _forecast_study(make_study)
    (webp,) = refresh.summary["codecs"]
    forecast = refresh.summary["forecast"]
    client.force_login(owner)
    page = client.get(f"/studies/{study.slug}/").content.decode()
    rule = page.split('id="stopping-rule"')[1].split("<h2>Analysis</h2>")[0]
    assert "within <strong>±5</strong> points" in rule
    row = rule.split('data-codec="webp"')[1].split("</tr>")[0]
    assert f"±{webp['halfwidth']:.1f}" in row
    shown = rule.split('id="forecast"')[1].split("</p>")[0]
    assert f"about <strong>{forecast['votes']:,.0f}</strong> more votes" in shown
    assert refresh.finished_at is not None
    computed = timezone.localtime(refresh.finished_at).strftime("%Y-%m-%d %H:%M %Z")
    assert f"Computed {computed} from 36 counted votes (refresh #{refresh.pk}" in shown


def test_the_study_page_says_when_the_first_refresh_comes(
    client: Client, owner: Any, make_study: Any
) -> None:
    study = make_study(slug="early", sampling_strategy="active", refresh_every=50)
    client.force_login(owner)
    page = client.get(f"/studies/{study.slug}/").content.decode()
    assert "No refresh yet: the first runs after 50 counted votes" in page
    assert "pairs are chosen by the balanced rule" in page
    balanced = make_study(slug="plain")
    assert 'id="stopping-rule"' not in client.get(f"/studies/{balanced.slug}/").content.decode()


def test_a_study_with_auto_close_closes_itself_when_every_interval_meets_the_target(
    make_study: Any,
) -> None:
    study = make_study(
        slug="target",
        trials_per_session=12,
        refresh_every=30,
        target_halfwidth=1000.0,
        auto_close=True,
    )
    for n in range(3):
        _rate(study, f"p{n}")
    refresh = _refreshed(study)
    assert refresh.status == "succeeded", refresh.error
    assert refresh.summary["codecs"][0]["met"]
    study.refresh_from_db()
    assert study.status == StudyStatus.CLOSED
    assert f"refresh #{refresh.pk}" in study.closed_reason
    assert "at most 1000 points" in study.closed_reason


def test_a_study_with_auto_close_closes_itself_at_its_vote_budget(make_study: Any) -> None:
    study = make_study(
        slug="budget", trials_per_session=6, refresh_every=8, vote_budget=8, auto_close=True
    )
    _rate(study, "p0")
    _rate(study, "p1", votes=2)
    refresh = _refreshed(study)
    study.refresh_from_db()
    assert study.status == StudyStatus.CLOSED
    assert "vote budget of 8 is reached (8 counted votes)" in study.closed_reason
    assert f"refresh #{refresh.pk}" in study.closed_reason
    with pytest.raises(services.StudyNotOpen):
        _rate(study, "late")


def test_a_study_without_auto_close_stays_open_past_its_target_and_budget(
    make_study: Any,
) -> None:
    study = make_study(
        slug="manual", trials_per_session=6, refresh_every=8, vote_budget=8, target_halfwidth=1e4
    )
    _rate(study, "p0")
    _rate(study, "p1", votes=2)
    refresh = _refreshed(study)
    assert refresh.status == "succeeded", refresh.error
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN and study.closed_reason == ""
    assert planning.stopping_reason(
        study=study, halfwidths={"webp": 1.0}, counted_votes=refresh.n_votes
    )


@pytest.mark.django_db(transaction=True)
def test_a_fit_applies_the_stopping_rule_too(make_study: Any, run_worker: Any) -> None:
    study = make_study(slug="fit-closes", trials_per_session=6, vote_budget=6, auto_close=True)
    study.refresh_every = 1000  # no refresh: the fit alone closes it
    study.save(update_fields=["refresh_every"])
    _rate(study, "p0")
    fit = services.fit_request(study=study, fast=True)
    run_worker()
    fit.refresh_from_db()
    assert fit.status == "succeeded", fit.error
    study.refresh_from_db()
    assert study.status == StudyStatus.CLOSED
    assert study.closed_reason.startswith(f"Closed itself after fit #{fit.pk}: the vote budget")


def test_closing_records_the_reason_given(study: Study, make_study: Any) -> None:
    services.study_set_status(study=study, status="closed", reason="budget reached")
    study.refresh_from_db()
    assert study.closed_reason == "budget reached"
    by_hand = services.study_set_status(study=make_study(slug="by-hand"), status="closed")
    assert by_hand.status == "closed" and by_hand.closed_reason == ""


# --- Through the real worker ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_worker_refreshes_the_planner_and_the_next_trials_follow_it(
    make_study: Any, run_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(
        slug="worker", trials_per_session=12, sampling_strategy="active", refresh_every=24
    )
    for n in range(2):
        _rate(study, f"p{n}")
    refresh = PlannerRefresh.objects.get()
    assert refresh.status == "queued" and refresh.task_id
    run_worker()
    refresh.refresh_from_db()
    assert refresh.status == "succeeded", refresh.error
    study.refresh_from_db()
    assert study.planner_id == refresh.pk
    assert refresh.summary["forecast"]["strategy"] == "active"

    chosen: list[Any] = []
    original = ActivePlanner.choose

    def spy(self: ActivePlanner, **kwargs: Any) -> Any:
        choice = original(self, **kwargs)
        chosen.append((choice, dict(kwargs["pending"])))
        return choice

    monkeypatch.setattr(ActivePlanner, "choose", spy)
    trials = _rate(study, "after")
    assert len(chosen) == len(trials) == 12
    for trial, (choice, _) in zip(trials, chosen, strict=True):
        assert (trial.source_image_id, trial.left.condition_id, trial.right.condition_id) == (
            choice.image_id,
            choice.left_condition_id,
            choice.right_condition_id,
        )
    # Each choice saw the trials issued since the refresh as pending.
    assert [sum(p.values()) for _, p in chosen] == list(range(12))
