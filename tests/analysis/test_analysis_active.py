"""Active pair selection (issue 8): the planner's rules, its arithmetic against a direct
computation, the forecast against simulated outcomes, and a small active-versus-balanced
rehearsal (the full comparison is bench/active.py)."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from analysis.active import (
    ActivePlanner,
    ChoiceReason,
    Objective,
    PlannerSettings,
    pair_information,
)
from analysis.forecast import Strategy, forecast_votes
from analysis.io import validate_conditions, validate_votes
from analysis.laplace import fit_laplace
from analysis.model import ELO_SLOPE, count_votes, resolve_options
from analysis.rehearsal import (
    RehearsalSettings,
    active_scheduler,
    rehearse,
    uniform_balanced_scheduler,
)
from analysis.simulate import SimulationDesign, simulate_study

#: A small PICO-like study for rehearsals: 6 codecs x 4 rates x 8 images.
SMALL = SimulationDesign(n_rates=4, n_images=8, n_votes=100, n_raters=60)
#: Target half-width of the small rehearsals (percentage points): wide enough to be
#: reached in a few thousand votes.
SMALL_TARGET = 12.0
#: Votes between refits and balanced warm-up of the small rehearsals.
SMALL_BATCH = 400
SMALL_WARMUP = 600
SEED = 5
#: Relative tolerance of the forecast made halfway through a rehearsal. The rehearsal
#: sees the crossing only at a refit, so it happened between the last refit that missed
#: the target and the first that met it; the forecast total must lie within this
#: fraction of that range. The crossing is also noisy in itself: half-widths measured
#: from 4,000 draws move by a few percent between refits.
FORECAST_RTOL = 0.25
#: Relative tolerance of the planner's scores against the direct computation.
RTOL = 1e-8


def _toy_planner(settings: PlannerSettings | None = None, **overrides: object) -> ActivePlanner:
    """Anchor ``a``, codec ``t`` (far from target) and codec ``u`` (well within it).

    Independent scores: ``t`` uncertain, the anchor and ``u`` known to a few Elo.
    """
    rates = np.array([0.1, 0.2, 0.4, 0.8])
    elo = 450.0 * np.log(rates / 0.1) - 450.0
    points = pd.DataFrame(
        {
            "condition": [f"{c}-{i}" for c in "atu" for i in range(4)],
            "codec": np.repeat(["a", "t", "u"], 4),
            "bpp": np.concatenate([rates, rates * 0.8, rates * 0.6]),
        }
    )
    mean = np.concatenate([elo, elo, elo])
    sd = np.concatenate([np.full(4, 3.0), np.full(4, 40.0), np.full(4, 3.0)])
    return ActivePlanner.from_posterior(
        mean,
        np.diag(sd**2),
        points,
        anchor="a",
        condition_ids=list(range(100, 112)),
        settings=settings or PlannerSettings(**overrides),  # type: ignore[arg-type]
        random_seed=1,
    )


def _choose(planner: ActivePlanner, rng: random.Random, **kwargs: object):
    defaults: dict[str, object] = {
        "image_ids": [1, 2, 3],
        "issued_per_image": {},
        "seen_by_rater": set(),
    }
    defaults.update(kwargs)
    return planner.choose(rng=rng, **defaults)  # type: ignore[arg-type]


def test_it_scores_pairs_by_the_rank_one_variance_reduction() -> None:
    planner = _toy_planner(exploration=0.0)
    k = planner.condition_ids.size
    a, b = np.triu_indices(k, 1)
    pending = {(100, 104): 3, (105, 106): 2, (101, 105): 1}
    # The direct computation: sequential rank-one updates of the covariance.
    sigma = planner.covariance.copy()
    for (first, second), n in pending.items():
        i, j = int(first) - 100, int(second) - 100
        u = np.zeros(k)
        u[i], u[j] = 1.0, -1.0
        info = n * float(pair_information(planner.mean[i] - planner.mean[j]))
        su = sigma @ u
        sigma -= np.outer(su, su) * info / (1.0 + info * (u @ su))
    g = planner.gradient
    variance = np.einsum("ck,kl,cl->c", g, sigma, g)
    excess = variance / planner.target_variance
    weight = excess**planner.settings.focus / planner.target_variance
    expected = np.empty(a.size)
    for p, (ai, bj) in enumerate(zip(a, b, strict=True)):
        u = np.zeros(k)
        u[ai], u[bj] = 1.0, -1.0
        info = float(pair_information(planner.mean[ai] - planner.mean[bj]))
        su = sigma @ u
        expected[p] = np.sum(weight * (g @ su) ** 2 * info / (1.0 + info * (u @ su)))
    np.testing.assert_allclose(planner.pair_scores(a, b, pending), expected, rtol=RTOL)
    np.testing.assert_allclose(planner.current_variance(pending), variance, rtol=RTOL)
    # Absorbing the trials gives the same covariance as the direct updates.
    np.testing.assert_allclose(planner.absorb(pending).covariance, sigma, rtol=RTOL, atol=1e-9)


def test_it_prefers_the_pair_that_moves_the_unfinished_bd_rate() -> None:
    planner = _toy_planner(exploration=0.0)
    # t is far above the target, u far below; with independent scores a pair within u
    # cannot move t's BD-rate at all.
    assert planner.halfwidth[0] > planner.settings.target_halfwidth
    assert planner.halfwidth[1] < planner.settings.target_halfwidth
    rng = random.Random(0)
    for _ in range(20):
        choice = _choose(planner, rng)
        pair = {choice.left_condition_id, choice.right_condition_id}
        assert pair <= set(range(100, 108)), pair  # the anchor and t only
        assert pair & set(range(104, 108)), pair  # and t is in it
        assert choice.reason is ChoiceReason.INFORMATION
    u_pair = planner.pair_scores(np.array([8]), np.array([9]))
    t_pair = planner.pair_scores(np.array([1]), np.array([5]))
    assert u_pair[0] < 1e-3 * t_pair[0]


def test_information_is_the_bradley_terry_fisher_information() -> None:
    diff = np.array([0.0, 200.0, -600.0])
    p = 1.0 / (1.0 + 10.0 ** (-diff / 400.0))
    np.testing.assert_allclose(pair_information(diff), ELO_SLOPE**2 * p * (1 - p), rtol=RTOL)
    # A rater answering at random half the time: information of the mixture answer.
    big = 0.5 / 2 + 0.5 * p
    expected = ELO_SLOPE**2 * 0.25 * (p * (1 - p)) ** 2 / (big * (1 - big))
    np.testing.assert_allclose(pair_information(diff, [(1.0, 0.5)]), expected, rtol=RTOL)


def test_pending_trials_spread_concurrent_choices() -> None:
    planner = _toy_planner(exploration=0.0)
    rng = random.Random(1)
    without: Counter[frozenset[int]] = Counter()
    for _ in range(30):
        choice = _choose(planner, rng)
        without[frozenset((choice.left_condition_id, choice.right_condition_id))] += 1
    assert len(without) == 1  # the same best pair for everyone

    pending: Counter[tuple[int, int]] = Counter()
    for _ in range(30):
        choice = _choose(planner, rng, pending=dict(pending))
        low, high = sorted((choice.left_condition_id, choice.right_condition_id))
        pending[(low, high)] += 1
    # t's BD-rate hangs on two of its conditions: the choices alternate between the
    # pairs that pin them instead of all going to one.
    assert len(pending) >= 2
    assert max(pending.values()) <= 20


def test_it_keeps_the_rater_rules() -> None:
    planner = _toy_planner()
    rng = random.Random(2)
    images = [1, 2, 3]
    seen: set[tuple[int, int, int]] = set()
    sides: dict[int, int] = {}
    issued: Counter[int] = Counter()
    n_pairs = 12 * 11 // 2
    for _ in range(len(images) * n_pairs):
        before = dict(sides)
        choice = _choose(
            planner,
            rng,
            image_ids=images,
            issued_per_image=dict(issued),
            seen_by_rater=set(seen),
            side_balance=before,
        )
        assert choice is not None
        assert choice.image_id in images
        left, right = choice.left_condition_id, choice.right_condition_id
        assert left != right
        key = (choice.image_id, min(left, right), max(left, right))
        assert key not in seen  # never a pair the rater has seen on that image
        assert before.get(left, 0) <= before.get(right, 0)  # the less-left one goes left
        seen.add(key)
        sides[left] = sides.get(left, 0) + 1
        sides[right] = sides.get(right, 0) - 1
        issued[choice.image_id] += 1
        assert max(issued.values()) - min(issued.get(i, 0) for i in images) <= 1
    # Every pair of every image issued once: nothing is left for this rater.
    assert _choose(planner, rng, image_ids=images, seen_by_rater=seen) is None


def test_the_floor_and_exploration_keep_every_condition_sampled() -> None:
    floor = 15
    planner = _toy_planner(floor=floor, exploration=0.1)
    rng = random.Random(3)
    appearances: Counter[int] = Counter()
    reasons: Counter[ChoiceReason] = Counter()
    n = 600
    for _ in range(n):
        choice = _choose(planner, rng, appearances=dict(appearances))
        appearances[choice.left_condition_id] += 1
        appearances[choice.right_condition_id] += 1
        reasons[choice.reason] += 1
    assert min(appearances.get(c, 0) for c in range(100, 112)) >= floor
    # u's conditions are uninformative: they are sampled by the floor and exploration.
    assert reasons[ChoiceReason.FLOOR] >= 1
    assert 0.05 < reasons[ChoiceReason.EXPLORATION] / n < 0.16


def test_the_elo_objective_ignores_what_the_study_reports() -> None:
    planner = _toy_planner(objective=Objective.ELO, exploration=0.0)
    a, b = np.triu_indices(12, 1)
    score = planner.pair_scores(a, b)
    s = planner.covariance[a, a] + planner.covariance[b, b] - 2 * planner.covariance[a, b]
    expected = np.log1p(pair_information(planner.mean[a] - planner.mean[b]) * s)
    np.testing.assert_allclose(score, expected, rtol=RTOL)


def test_a_planner_survives_a_round_trip_through_bytes() -> None:
    planner = _toy_planner(focus=2.0, floor=7)
    blob = planner.to_bytes()
    loaded = ActivePlanner.from_bytes(blob)
    assert loaded.settings == planner.settings
    assert loaded.codecs == planner.codecs and loaded.anchor == planner.anchor
    for name in ("condition_ids", "mean", "covariance", "gradient", "shortlist_a", "halfwidth"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(planner, name))
    kwargs = {"pending": {(100, 104): 2}, "appearances": {c: 20 for c in range(100, 112)}}
    for seed in range(5):
        assert _choose(loaded, random.Random(seed), **kwargs) == _choose(
            planner, random.Random(seed), **kwargs
        )
    with pytest.raises(ValueError, match="not an active planner"):
        ActivePlanner.from_bytes(_broken(blob))


def _broken(blob: bytes) -> bytes:
    import io

    with np.load(io.BytesIO(blob)) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["meta_values"] = np.where(arrays["meta_keys"] == "version", "999", arrays["meta_values"])
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_laplace_gives_the_elo_covariance_of_its_draws() -> None:
    study = simulate_study(SMALL, seed=SEED)
    conditions = validate_conditions(study.conditions)
    data = count_votes(validate_votes(study.votes, conditions), conditions)
    fit = fit_laplace(data, options=resolve_options(data, model="bt"), draws=8000, random_seed=2)
    assert fit.elo_covariance is not None
    draws = fit.idata.posterior["elo"].to_numpy().reshape(-1, len(data.conditions))
    empirical = np.cov(draws.T)
    scale = np.sqrt(np.outer(np.diag(empirical), np.diag(empirical)))
    # 8,000 draws: correlations are known to about 0.01-0.02.
    assert np.max(np.abs(fit.elo_covariance - empirical) / scale) < 0.06
    np.testing.assert_allclose(fit.elo_covariance.sum(axis=1), 0.0, atol=1e-6)


@pytest.fixture(scope="module")
def rehearsals():
    study = simulate_study(SMALL, seed=SEED)
    settings = RehearsalSettings(
        target_halfwidth=SMALL_TARGET, batch=SMALL_BATCH, warmup=SMALL_WARMUP, max_votes=20_000
    )
    balanced = rehearse(
        study, uniform_balanced_scheduler, seed=SEED, settings=settings, needs_planner=True
    )
    active = rehearse(study, active_scheduler, seed=SEED, settings=settings, needs_planner=True)
    return study, balanced, active


def test_active_needs_fewer_votes_than_balanced_on_a_small_study(rehearsals) -> None:
    _, balanced, active = rehearsals
    assert balanced.reached and active.reached
    assert active.votes <= 0.75 * balanced.votes, (active.votes, balanced.votes)
    # The same warm-up for both.
    assert active.checkpoints[0].votes == balanced.checkpoints[0].votes == SMALL_WARMUP


@pytest.mark.parametrize("strategy", [Strategy.BALANCED, Strategy.ACTIVE])
def test_the_forecast_made_halfway_matches_the_simulated_outcome(rehearsals, strategy) -> None:
    _, balanced, active = rehearsals
    result = balanced if strategy is Strategy.BALANCED else active
    halfway = min(result.planners, key=lambda p: abs(p.n_votes - result.votes / 2))
    forecast = forecast_votes(halfway, strategy=strategy, draws=8, random_seed=1)
    assert not forecast.met and forecast.reached_share == 1.0
    total = halfway.n_votes + forecast.votes
    missed = result.checkpoints[-2].votes
    assert missed * (1 - FORECAST_RTOL) <= total <= result.votes * (1 + FORECAST_RTOL), (
        total,
        missed,
        result.votes,
    )
    assert forecast.votes_lo <= forecast.votes <= forecast.votes_hi
    assert math.isfinite(forecast.votes_hi)
