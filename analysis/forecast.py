"""Stopping rule and forecast: how many more votes until every BD-rate interval is narrow enough.

The study's stopping rule is met when every codec's 95% BD-rate half-width is at most
the target. The forecast simulates the rest of the study from the current posterior,
under the linear-Gaussian model of :mod:`analysis.active`: for each of a number of draws
of the true scores from the posterior (the first is the posterior mean), votes are
allocated as the strategy would allocate them, each vote adds its Fisher information
(computed at that draw's scores) to the posterior precision, and a codec's half-width is
predicted as its current one times the square root of the ratio of its linearised
BD-rate variances. The number of votes at which every predicted half-width meets the
target is recorded per draw; the forecast is their median with an 80% interval, which
carries the uncertainty about the scores (how informative future comparisons will be),
not the noise of a finite posterior sample.

- ``balanced``: every pair of conditions of an image equally often, so the precision
  grows by ``n F`` with ``F`` the mean information matrix over all pairs; the half-width
  at any ``n`` has a closed form through one generalised eigendecomposition.
- ``active``: the planner's greedy rule replayed in steps of about 2% of the votes so
  far (each step's votes go to the best-scoring pair, or with the planner's exploration
  probability to a random pair), with rank-one updates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from analysis.active import ActivePlanner, ConditionPair, pair_information

#: Draws of the true scores simulated (the first is the posterior mean).
DEFAULT_FORECAST_DRAWS: Final = 16
#: Probability mass of the forecast's interval over the draws.
FORECAST_INTERVAL: Final = 0.8
#: Votes per step of the active replay, as a share of the votes so far.
ACTIVE_STEP_SHARE: Final = 0.02
#: Fewest votes per step of the active replay.
MIN_ACTIVE_STEP: Final = 5
#: Horizon of the forecast, as a multiple of the votes so far (at least MIN_HORIZON
#: votes): beyond it the target counts as out of reach.
HORIZON_FACTOR: Final = 50.0
MIN_HORIZON: Final = 100_000
#: Pairs sampled to estimate the balanced information matrix when there are more.
MAX_BALANCED_PAIRS: Final = 200_000


class Strategy(StrEnum):
    """The study's pair-scheduling strategy."""

    BALANCED = "balanced"
    ACTIVE = "active"


@dataclass(frozen=True)
class VoteForecast:
    """How many more votes the stopping rule needs, by simulation from the posterior.

    Attributes
    ----------
    strategy : Strategy
    codecs : tuple of str
    halfwidth : ndarray, shape (C,)
        Current 95% BD-rate half-widths (percentage points; predicted from the
        refresh for pending trials).
    target_halfwidth : float
    met : bool
        Every half-width is at most the target now.
    votes : float
        Median over the draws of the further votes needed (``inf`` when beyond the
        horizon in most draws; 0 when met).
    votes_lo, votes_hi : float
        The 80% interval over the draws.
    reached_share : float
        Share of draws that reach the target within the horizon.
    per_draw : ndarray
        Votes needed in each draw (``inf`` beyond the horizon).
    """

    strategy: Strategy
    codecs: tuple[str, ...]
    halfwidth: npt.NDArray[np.float64]
    target_halfwidth: float
    met: bool
    votes: float
    votes_lo: float
    votes_hi: float
    reached_share: float
    per_draw: npt.NDArray[np.float64]


def forecast_votes(
    planner: ActivePlanner,
    *,
    strategy: Strategy | str = Strategy.ACTIVE,
    pending: dict[ConditionPair, int] | None = None,
    draws: int = DEFAULT_FORECAST_DRAWS,
    horizon: int | None = None,
    random_seed: int = 0,
) -> VoteForecast:
    """Forecast the further votes needed until every half-width meets the planner's target.

    Parameters
    ----------
    planner : ActivePlanner
        The latest refresh (its target, rater mix and exploration are used).
    strategy : Strategy or str
        ``active`` or ``balanced``.
    pending : dict, optional
        Trials issued since the refresh, per condition pair (counted as done).
    draws : int
        Draws of the true scores; the first is the posterior mean.
    horizon : int, optional
        Most further votes simulated; by default :data:`HORIZON_FACTOR` times the votes
        so far, at least :data:`MIN_HORIZON`.
    random_seed : int

    Returns
    -------
    VoteForecast

    Raises
    ------
    ValueError
        If ``draws`` is below 1 or the strategy is unknown.
    """
    strategy = Strategy(strategy)
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    if pending:
        planner = planner.absorb(pending)
    horizon = (
        max(MIN_HORIZON, round(HORIZON_FACTOR * planner.n_votes)) if horizon is None else horizon
    )
    target = planner.settings.target_halfwidth
    met = bool(np.all(_halfwidth_rule(planner, planner.variance) <= target))
    rng = np.random.default_rng(random_seed)
    root = _root(planner.covariance)
    per_draw = np.empty(draws)
    relative_se = np.nan_to_num(planner.halfwidth_se / planner.halfwidth)
    for d in range(draws):
        if met:
            per_draw[d] = 0.0
            continue
        if d == 0:
            scores, replay = planner.mean, planner
        else:
            scores = planner.mean + root @ rng.standard_normal(root.shape[1])
            # Measured half-widths are h (1 + e) now and at the crossing: the target
            # variance scales by the squared ratio of the two errors.
            spread = math.sqrt(2.0) * relative_se
            error = np.clip(1.0 + spread * rng.standard_normal(relative_se.size), 0.5, 2.0)
            replay = replace(planner, target_variance=planner.target_variance / error**2)
        if strategy is Strategy.BALANCED:
            per_draw[d] = _balanced_votes(replay, scores, horizon, rng)
        else:
            per_draw[d] = _active_votes(replay, scores, horizon, rng)
    lo_q, hi_q = (1.0 - FORECAST_INTERVAL) / 2.0, (1.0 + FORECAST_INTERVAL) / 2.0
    finite = np.isfinite(per_draw)
    quantiles = np.quantile(np.where(finite, per_draw, np.inf), [0.5, lo_q, hi_q], method="lower")
    return VoteForecast(
        strategy=strategy,
        codecs=planner.codecs,
        halfwidth=planner.predicted_halfwidth(),
        target_halfwidth=target,
        met=met,
        votes=float(quantiles[0]),
        votes_lo=float(quantiles[1]),
        votes_hi=float(quantiles[2]),
        reached_share=float(finite.mean()),
        per_draw=per_draw,
    )


def _root(covariance: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    values, vectors = np.linalg.eigh(covariance)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def _halfwidth_rule(
    planner: ActivePlanner, variance_at: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Predicted half-widths as the stopping rule sees them (unknown ones from their
    stand-in excess, see analysis.active.UNKNOWN_EXCESS)."""
    return planner.settings.target_halfwidth * np.sqrt(variance_at / planner.target_variance)


def _balanced_votes(
    planner: ActivePlanner, scores: npt.NDArray[np.float64], horizon: int, rng: np.random.Generator
) -> float:
    """Votes until the target under uniform allocation over all pairs (closed form)."""
    k = scores.size
    n_pairs = k * (k - 1) // 2
    if n_pairs <= MAX_BALANCED_PAIRS:
        a, b = np.triu_indices(k, 1)
    else:
        a = rng.integers(0, k, MAX_BALANCED_PAIRS)
        b = (a + rng.integers(1, k, MAX_BALANCED_PAIRS)) % k
    info = pair_information(scores[a] - scores[b], planner.rater_mix)
    # Mean information matrix of one vote: the graph Laplacian of the pair weights.
    weight = np.zeros((k, k))
    np.add.at(weight, (a, b), info)
    weight = weight + weight.T
    mean_info = (np.diag(weight.sum(axis=1)) - weight) / a.size
    # On the sum-zero subspace: Sigma_q = R R^T, R^T F_q R = V diag(lam) V^T, so the
    # covariance after n votes is R V diag(1 / (1 + n lam)) V^T R^T.
    basis = _sum_zero_basis(k)
    sigma_q = basis.T @ planner.covariance @ basis
    values, vectors = np.linalg.eigh((sigma_q + sigma_q.T) / 2.0)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    inner = root.T @ (basis.T @ mean_info @ basis) @ root
    lam, v = np.linalg.eigh((inner + inner.T) / 2.0)
    lam = np.clip(lam, 0.0, None)
    y = (planner.gradient @ basis @ root @ v) ** 2  # (C, K - 1)

    def halfwidth(n: float) -> npt.NDArray[np.float64]:
        return _halfwidth_rule(planner, y @ (1.0 / (1.0 + n * lam)))

    target = planner.settings.target_halfwidth
    if np.any(halfwidth(horizon) > target):
        return math.inf
    lo, hi = 0.0, float(horizon)
    while hi - lo > max(1.0, 1e-3 * hi):
        mid = (lo + hi) / 2.0
        if np.all(halfwidth(mid) <= target):
            hi = mid
        else:
            lo = mid
    return float(math.ceil(hi))


def _active_votes(
    planner: ActivePlanner, scores: npt.NDArray[np.float64], horizon: int, rng: np.random.Generator
) -> float:
    """Votes until the target when the planner's greedy rule allocates them."""
    k = scores.size
    sigma = planner.covariance.copy()
    projected = planner.projected.copy()
    variance = planner.variance.copy()
    a, b = planner.shortlist_a, planner.shortlist_b
    info = pair_information(scores[a] - scores[b], planner.rater_mix)
    target = planner.settings.target_halfwidth
    added = 0
    while added < horizon:
        if np.all(_halfwidth_rule(planner, variance) <= target):
            return float(added)
        step = max(MIN_ACTIVE_STEP, round(ACTIVE_STEP_SHARE * (planner.n_votes + added)))
        if rng.random() < planner.settings.exploration:
            i = int(rng.integers(0, k))
            j = int((i + rng.integers(1, k)) % k)
            pair_info = float(pair_information(scores[i] - scores[j], planner.rater_mix))
        else:
            s = np.maximum(sigma[a, a] + sigma[b, b] - 2.0 * sigma[a, b], 0.0)
            if planner.settings.objective == "elo":
                score = np.log1p(info * s)
            else:
                gain = (projected[a] - projected[b]) ** 2 * (info / (1.0 + info * s))[:, None]
                score = gain @ planner.codec_weights(variance)
            best = int(np.argmax(score))
            i, j, pair_info = int(a[best]), int(b[best]), float(info[best])
        u_sigma = sigma[:, i] - sigma[:, j]
        u_projected = projected[i] - projected[j]
        s_ij = max(float(u_sigma[i] - u_sigma[j]), 0.0)
        factor = step * pair_info / (1.0 + step * pair_info * s_ij)
        sigma -= factor * np.outer(u_sigma, u_sigma)
        projected -= factor * np.outer(u_sigma, u_projected)
        variance = np.maximum(variance - factor * u_projected**2, np.finfo(np.float64).tiny)
        added += step
    return math.inf


def _sum_zero_basis(k: int) -> npt.NDArray[np.float64]:
    """Orthonormal basis (K, K - 1) of the vectors that sum to zero."""
    helmert = np.eye(k)[:, :-1] - np.eye(k)[:, 1:]
    q, _ = np.linalg.qr(helmert)
    return q
