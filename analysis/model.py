"""Bradley-Terry model of pairwise votes on the Elo scale, and its fitting.

The probability that condition a is judged closer to the original than condition b is

    P(a beats b) = 1 / (1 + 10^(-(E_a - E_b) / 400)) = sigmoid(ELO_SLOPE * (E_a - E_b)),

with one Elo score E per condition, pooled over images. Only differences are
identified by the data, so the scores are given a sum-to-zero constraint
(``pm.ZeroSumNormal``): the reported Elo is relative to the mean of all conditions,
which is 0. No condition is singled out as the reference.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from xarray import DataTree

from analysis.types import CHOICE_A, CHOICE_TIE, PairCounts, SamplerSettings

#: Elo points per factor of 10 in the odds of winning (the chess convention).
ELO_SCALE: Final = 400.0
#: Slope of the logistic in Elo units: P(a beats b) = sigmoid(ELO_SLOPE * (E_a - E_b)).
ELO_SLOPE: Final = math.log(10.0) / ELO_SCALE

#: Credit a tie gives each side, in wins ("half a win each" in this first version).
TIE_CREDIT: Final = 0.5

#: Name of the condition dimension of the fitted model.
CONDITION_DIM: Final = "condition"
#: Name of the Elo variable in the posterior.
ELO_VAR: Final = "elo"

#: Sampler defaults (see :class:`analysis.types.SamplerSettings`).
DEFAULT_DRAWS: Final = SamplerSettings().draws
DEFAULT_TUNE: Final = SamplerSettings().tune
DEFAULT_CHAINS: Final = SamplerSettings().chains


@dataclass(frozen=True)
class BTPriors:
    """Priors of the Bradley-Terry model.

    Attributes
    ----------
    elo_sigma : float
        Scale, in Elo points, of the zero-sum normal prior on the condition scores.
        Weakly informative: published codec studies span about 1,200 Elo from their
        worst to their best condition (Google's mucped23 jpegli study: standard
        deviation 357 over 31 conditions), so 600 keeps such spreads within about one
        prior standard deviation of the mean while ruling out scores thousands of
        points apart, which no data set of this kind can support.
    """

    elo_sigma: float = 600.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.elo_sigma) and self.elo_sigma > 0):
            raise ValueError(f"elo_sigma must be positive and finite, got {self.elo_sigma}")


def count_pairs(votes: pd.DataFrame, conditions: pd.DataFrame) -> PairCounts:
    """Aggregate votes into counts per ordered pair of conditions.

    Parameters
    ----------
    votes : DataFrame
        A validated vote table (see :func:`analysis.io.validate_votes`). Golden rows,
        if flagged in a boolean ``golden`` column, are left out.
    conditions : DataFrame
        A validated condition table; every condition in it gets a score, including
        conditions that no vote compares. They appear in the order of first occurrence.

    Returns
    -------
    PairCounts
        Counts per ordered pair, ties counting half a win for each side.

    Raises
    ------
    ValueError
        If a vote names a condition not in ``conditions``, ``golden`` is not boolean
        (validate first), or there is no vote left to count.
    """
    labels = tuple(pd.unique(conditions["condition"]))
    if "golden" in votes.columns:
        if not pd.api.types.is_bool_dtype(votes["golden"]):
            raise ValueError("golden must be boolean; pass votes through validate_votes first")
        votes = votes.loc[~votes["golden"].to_numpy(dtype=bool)]
    if votes.empty:
        raise ValueError("no votes to count")
    position = pd.Index(labels)
    a_idx = position.get_indexer(votes["condition_a"])
    b_idx = position.get_indexer(votes["condition_b"])
    if (a_idx < 0).any() or (b_idx < 0).any():
        raise ValueError("a vote names a condition that is not in the condition table")
    choice = votes["choice"].to_numpy()
    wins_a = np.where(choice == CHOICE_A, 1.0, np.where(choice == CHOICE_TIE, TIE_CREDIT, 0.0))
    grouped = (
        pd.DataFrame({"a": a_idx, "b": b_idx, "wins_a": wins_a})
        .groupby(["a", "b"], sort=True)["wins_a"]
        .agg(["sum", "size"])
        .reset_index()
    )
    return PairCounts(
        conditions=labels,
        a_idx=grouped["a"].to_numpy(dtype=np.intp),
        b_idx=grouped["b"].to_numpy(dtype=np.intp),
        wins_a=grouped["sum"].to_numpy(dtype=np.float64),
        n=grouped["size"].to_numpy(dtype=np.int64),
        n_ties=int((choice == CHOICE_TIE).sum()),
    )


def build_bt_model(data: PairCounts, *, priors: BTPriors | None = None) -> pm.Model:
    """Build the Bradley-Terry model on the Elo scale.

    The likelihood is a ``pm.Potential`` of count-weighted log-sigmoids, one term per
    ordered pair: ``w log s(d) + (n - w) log s(-d)`` with ``d = ELO_SLOPE (E_a - E_b)``,
    ``w`` the wins of A and ``n`` the votes on the pair. It equals the sum of per-vote
    Bernoulli log-likelihoods (ties contributing half a win to each side), so the
    posterior is the same as for per-vote data, at a cost that grows with the number of
    distinct pairs rather than votes.

    Parameters
    ----------
    data : PairCounts
        Aggregated votes, from :func:`count_pairs`.
    priors : BTPriors, optional
        Prior scales; ``BTPriors()`` when omitted.

    Returns
    -------
    pm.Model
        A model with coordinate ``condition`` and the variable ``elo`` (dims
        ``condition``), constrained to sum to zero.

    Raises
    ------
    ValueError
        If ``data`` has fewer than two conditions or its arrays disagree in length.
    """
    priors = BTPriors() if priors is None else priors
    n_conditions = len(data.conditions)
    if n_conditions < 2:
        raise ValueError(f"need at least two conditions, got {n_conditions}")
    lengths = {len(data.a_idx), len(data.b_idx), len(data.wins_a), len(data.n)}
    if len(lengths) != 1:
        raise ValueError("a_idx, b_idx, wins_a and n must have the same length")

    coords = {CONDITION_DIM: list(data.conditions), "pair": np.arange(len(data.n))}
    with pm.Model(coords=coords) as model:
        a_idx = pm.Data("a_idx", data.a_idx, dims="pair")
        b_idx = pm.Data("b_idx", data.b_idx, dims="pair")
        wins_a = pm.Data("wins_a", data.wins_a, dims="pair")
        n = pm.Data("n", data.n.astype(np.float64), dims="pair")
        elo = pm.ZeroSumNormal(ELO_VAR, sigma=priors.elo_sigma, dims=CONDITION_DIM)
        logit = ELO_SLOPE * (elo[a_idx] - elo[b_idx])
        # log sigmoid(x) = -log1p(exp(-x)), written stably.
        log_p_a = -pt.log1pexp(-logit)
        log_p_b = -pt.log1pexp(logit)
        pm.Potential("votes", pt.sum(wins_a * log_p_a + (n - wins_a) * log_p_b))
    return model


def fit_model(
    model: pm.Model,
    *,
    random_seed: int,
    draws: int = DEFAULT_DRAWS,
    tune: int = DEFAULT_TUNE,
    chains: int = DEFAULT_CHAINS,
) -> DataTree:
    """Sample the posterior with NUTS (nutpie).

    The same ``random_seed`` gives bit-for-bit the same draws.

    Parameters
    ----------
    model : pm.Model
        A model from a ``build_*_model`` function.
    random_seed : int
        Seed of the sampler; per-chain seeds are derived from it.
    draws : int
        Draws kept per chain.
    tune : int
        Warm-up iterations per chain (discarded).
    chains : int
        Number of independent chains (at least 2, for R-hat).

    Returns
    -------
    DataTree
        With groups ``posterior`` and ``sample_stats``.

    Raises
    ------
    ValueError
        If ``draws`` or ``tune`` is below 1 or ``chains`` below 2.
    """
    if draws < 1 or tune < 1:
        raise ValueError(f"draws and tune must be at least 1, got {draws} and {tune}")
    if chains < 2:
        raise ValueError(f"at least two chains are needed for R-hat, got {chains}")
    cores = min(chains, os.cpu_count() or 1)
    return pm.sample(
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=random_seed,
        model=model,
        nuts_sampler="nutpie",
        progressbar=False,
        quiet=True,
        compute_convergence_checks=False,
    )
