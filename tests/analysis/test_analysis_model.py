"""The Bradley-Terry model: vote counting, the posterior it defines, reproducible sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from analysis.model import (
    CONDITION_DIM,
    ELO_VAR,
    BTPriors,
    build_bt_model,
    count_pairs,
    fit_model,
)

#: MAP agreement between PyMC (L-BFGS-B, default tolerance) and SciPy, in Elo points.
ATOL_MAP_ELO = 0.01
#: Largest gradient (log density per Elo point) accepted at SciPy's optimum.
GTOL_MAP = 1e-7
#: Small sampler settings for the reproducibility test (bit equality needs no precision).
SMALL_DRAWS = 100
SMALL_TUNE = 100
SMALL_CHAINS = 2


def _conditions(labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "condition": labels,
            "codec": ["x"] * len(labels),
            "image": ["img"] * len(labels),
            "bpp": np.arange(1.0, len(labels) + 1.0),
        }
    )


def _random_votes(seed: int, labels: list[str], n_votes: int) -> pd.DataFrame:
    """Votes with ties, from arbitrary Elo scores (only the MAP comparison matters here)."""
    rng = np.random.default_rng(seed)
    k = len(labels)
    true = rng.normal(0.0, 150.0, k)
    a = rng.integers(0, k, n_votes)
    b = (a + rng.integers(1, k, n_votes)) % k
    p_a = 1.0 / (1.0 + 10.0 ** (-(true[a] - true[b]) / 400.0))
    u = rng.random(n_votes)
    tie = rng.random(n_votes) < 0.15
    choice = np.where(tie, "tie", np.where(u < p_a, "a", "b"))
    return pd.DataFrame(
        {
            "rater": "r1",
            "image": "img",
            "condition_a": np.array(labels)[a],
            "condition_b": np.array(labels)[b],
            "choice": choice,
            "golden": False,
        }
    )


def test_counting_pools_identical_ordered_pairs_with_ties_as_half_wins() -> None:
    votes = pd.DataFrame(
        {
            "rater": ["r1"] * 6,
            "image": ["img"] * 6,
            "condition_a": ["A", "A", "A", "B", "original", "A"],
            "condition_b": ["B", "B", "B", "A", "degraded", "C"],
            "choice": ["a", "b", "tie", "a", "a", "tie"],
            "golden": [False, False, False, False, True, False],
        }
    )
    counts = count_pairs(votes, _conditions(["A", "B", "C", "D"]))

    assert counts.conditions == ("A", "B", "C", "D")
    got = {
        (int(a), int(b)): (float(w), int(n))
        for a, b, w, n in zip(counts.a_idx, counts.b_idx, counts.wins_a, counts.n, strict=True)
    }
    assert got == {(0, 1): (1.5, 3), (0, 2): (0.5, 1), (1, 0): (1.0, 1)}
    assert counts.n_votes == 5
    assert counts.n_ties == 2


def test_the_model_has_one_zero_sum_elo_per_condition() -> None:
    labels = ["A", "B", "C"]
    model = build_bt_model(count_pairs(_random_votes(1, labels, 30), _conditions(labels)))
    assert model.named_vars_to_dims[ELO_VAR] == (CONDITION_DIM,)
    assert list(model.coords[CONDITION_DIM]) == labels
    prior = pm.draw(model[ELO_VAR], draws=50, random_seed=3, mode="FAST_COMPILE")
    np.testing.assert_allclose(prior.sum(axis=1), 0.0, atol=1e-9)


@pytest.mark.filterwarnings("ignore:`find_MAP` will return:FutureWarning")
def test_its_map_equals_scipys_per_vote_maximum_with_the_same_prior() -> None:
    labels = [f"c{i}" for i in range(6)]
    votes = _random_votes(20240611, labels, 400)
    priors = BTPriors(elo_sigma=300.0)  # a tighter prior, so the prior term matters
    model = build_bt_model(count_pairs(votes, _conditions(labels)), priors=priors)
    point = pm.find_MAP(
        model=model,
        progressbar=False,
        jitter=False,
        return_inferencedata=False,
        compile_kwargs={"mode": "FAST_COMPILE"},
    )

    # Independent truth: per-vote Bernoulli with a tie as y = 1/2, Gaussian prior on the
    # zero-sum scores (the ZeroSumNormal density on its subspace), E_last = -sum(others).
    index = {label: i for i, label in enumerate(labels)}
    a = votes["condition_a"].map(index).to_numpy()
    b = votes["condition_b"].map(index).to_numpy()
    y = votes["choice"].map({"a": 1.0, "b": 0.0, "tie": 0.5}).to_numpy()
    slope = np.log(10.0) / 400.0

    def negative_log_posterior(free: np.ndarray) -> tuple[float, np.ndarray]:
        elo = np.append(free, -free.sum())
        d = slope * (elo[a] - elo[b])
        log_lik = np.sum(y * log_expit(d) + (1.0 - y) * log_expit(-d))
        log_prior = -np.sum(elo**2) / (2.0 * priors.elo_sigma**2)
        # Gradient with respect to all scores, then through E_last = -sum(free).
        per_vote = slope * (y - expit(d))
        grad = np.bincount(a, per_vote, len(labels)) - np.bincount(b, per_vote, len(labels))
        grad -= elo / priors.elo_sigma**2
        return -(log_lik + log_prior), -(grad[:-1] - grad[-1])

    found = minimize(
        negative_log_posterior,
        np.zeros(len(labels) - 1),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-8},
    )
    # BFGS may stop on "precision loss" at the optimum; what matters is a zero gradient.
    assert np.max(np.abs(found.jac)) < GTOL_MAP
    expected = np.append(found.x, -found.x.sum())
    np.testing.assert_allclose(point[ELO_VAR], expected, atol=ATOL_MAP_ELO)


@pytest.mark.slow
def test_sampling_is_reproducible_bit_for_bit_with_the_same_seed() -> None:
    labels = ["A", "B", "C", "D"]
    counts = count_pairs(_random_votes(5, labels, 200), _conditions(labels))

    def draws(seed: int) -> np.ndarray:
        idata = fit_model(
            build_bt_model(counts),
            random_seed=seed,
            draws=SMALL_DRAWS,
            tune=SMALL_TUNE,
            chains=SMALL_CHAINS,
        )
        return idata.posterior[ELO_VAR].to_numpy()

    first, again, other = draws(42), draws(42), draws(43)
    assert first.shape == (SMALL_CHAINS, SMALL_DRAWS, len(labels))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("sigma", [0.0, -5.0, float("inf"), float("nan")])
def test_priors_refuse_a_scale_that_is_not_positive_and_finite(sigma: float) -> None:
    with pytest.raises(ValueError, match="elo_sigma"):
        BTPriors(elo_sigma=sigma)


def test_fitting_needs_two_chains_for_r_hat() -> None:
    labels = ["A", "B"]
    model = build_bt_model(count_pairs(_random_votes(1, labels, 10), _conditions(labels)))
    with pytest.raises(ValueError, match="two chains"):
        fit_model(model, random_seed=1, chains=1)
