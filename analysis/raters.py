"""The rater table: how much each rater answered, how reliably, and whom to exclude.

Reliability comes from two sources: golden trials (the original against a heavily
degraded copy, which any attentive rater gets right) and, with ``--model bt-rater``, the
posterior of the rater's type (attentive, half-attentive, random) given all their votes.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sparse
from scipy.special import logsumexp
from scipy.stats import binomtest
from xarray import DataTree

from analysis.model import (
    ELO_SLOPE,
    ELO_VAR,
    LAPSE_VAR,
    POSITION_BIAS_MIN_SWAPPED_SHARE,
    POSITION_VAR,
    RATER_TYPES,
    TIE_VAR,
    TYPE_SHARE_VAR,
    ModelName,
    ModelOptions,
    rater_cells,
    rater_type_lapses,
    swapped_share,
)
from analysis.types import CHOICE_A, CHOICE_B, RATER_COLUMNS, VoteData

#: Posterior probability of the random type from which a rater is suggested for exclusion.
RANDOM_TYPE_EXCLUDE: Final = 0.5
#: Golden answers a rater may get wrong before exclusion is suggested, and the accuracy
#: below which it is (both must be exceeded: one slip is not a reason).
GOLDEN_WRONG_ALLOWED: Final = 1
GOLDEN_ACCURACY_MIN: Final = 0.8
#: Left/right bias: fewest A-or-B votes to judge it, and the two-sided binomial p-value
#: below which a rater's preference for one side is flagged.
SIDE_MIN_VOTES: Final = 20
SIDE_P_VALUE: Final = 1e-3
#: Median response time below which answers are too fast to be looked at (Google's
#: jpegli study dropped answers under 1 s).
FAST_RESPONSE_MS: Final = 1000.0
#: Most posterior draws used for the per-rater type posterior (evenly thinned).
MAX_RATER_DRAWS: Final = 200
#: Probability mass of the lapse interval.
INTERVAL_PROB: Final = 0.95


def rater_table(
    votes: pd.DataFrame,
    data: VoteData,
    *,
    idata: DataTree | None = None,
    options: ModelOptions | None = None,
) -> pd.DataFrame:
    """One row per rater: activity, golden accuracy, estimated reliability, exclusions.

    Parameters
    ----------
    votes : DataFrame
        The validated vote table (with ``golden`` boolean; ``response_ms`` optional).
    data : VoteData
        The same votes as counted for the model.
    idata : DataTree, optional
        Posterior of a ``bt-rater`` fit; without it the lapse columns are empty.
    options : ModelOptions, optional
        The fit's model options (``bt-rater`` gives the lapse columns).

    Returns
    -------
    DataFrame
        Columns :data:`analysis.types.RATER_COLUMNS` (see docs/formats.md), in the order
        of ``data.raters``.

    Raises
    ------
    KeyError
        If ``idata`` lacks a variable of the ``bt-rater`` model.
    """
    n_raters = len(data.raters)
    index = pd.Index(data.raters)
    votes_per_rater = np.bincount(data.rater_idx, minlength=n_raters)
    golden_total = data.golden_correct + data.golden_wrong
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(golden_total > 0, data.golden_correct / golden_total, np.nan)
    counted = votes.loc[~votes["golden"].to_numpy(dtype=bool)]
    rater_of_vote = index.get_indexer(pd.Index(counted["rater"]))
    choice = counted["choice"].to_numpy()
    picks_a = np.bincount(rater_of_vote, choice == CHOICE_A, n_raters)
    picks_side = np.bincount(rater_of_vote, (choice == CHOICE_A) | (choice == CHOICE_B), n_raters)
    # Left and right mean something only when sides were randomised (and so recorded);
    # in files that list each pair in one fixed order, A and B are labels.
    sides_recorded = swapped_share(data) >= POSITION_BIAS_MIN_SWAPPED_SHARE
    with np.errstate(invalid="ignore", divide="ignore"):
        left_share = np.where((picks_side > 0) & sides_recorded, picks_a / picks_side, np.nan)
    median_ms = _median_response(votes, index)

    lapse = np.full((3, n_raters), np.nan)
    p_random = np.full(n_raters, np.nan)
    if idata is not None and options is not None and options.model is ModelName.BT_RATER:
        lapse, p_random = rater_posterior(idata, data, options)

    exclude: list[bool] = []
    reasons: list[str] = []
    for r in range(n_raters):
        why = _reasons(
            p_random=p_random[r],
            wrong=int(data.golden_wrong[r]),
            total=int(golden_total[r]),
            accuracy=accuracy[r],
            picks_a=int(picks_a[r]),
            picks_side=int(picks_side[r]) if sides_recorded else 0,
            median_ms=median_ms[r],
        )
        exclude.append(bool(why))
        reasons.append("; ".join(why))
    table = pd.DataFrame(
        {
            "rater": list(data.raters),
            "votes": votes_per_rater,
            "golden": golden_total,
            "golden_accuracy": accuracy,
            "lapse": lapse[0],
            "lapse_lo": lapse[1],
            "lapse_hi": lapse[2],
            "p_random": p_random,
            "median_response_ms": median_ms,
            "left_share": left_share,
            "exclude": np.asarray(exclude, dtype=int),
            "reason": reasons,
        }
    )
    return table[list(RATER_COLUMNS)]


def rater_posterior(
    idata: DataTree, data: VoteData, options: ModelOptions
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-rater random-answer probability and random-type probability of a bt-rater fit.

    For each (thinned) posterior draw, a rater's type has posterior probabilities
    proportional to the type share times the likelihood of the rater's votes and golden
    answers under the type; the rater's random-answer probability in that draw is the
    type lapses averaged with these weights.

    Parameters
    ----------
    idata : DataTree
        Posterior of :func:`analysis.model.build_bt_rater_model`.
    data : VoteData
    options : ModelOptions

    Returns
    -------
    lapse : ndarray, shape (3, n_raters)
        Median, 2.5% and 97.5% quantiles of each rater's random-answer probability.
    p_random : ndarray, shape (n_raters,)
        Posterior probability that the rater is of the random type.
    """
    post = idata.posterior
    n_conditions = len(data.conditions)
    elo = np.asarray(post[ELO_VAR].values, dtype=np.float64).reshape(-1, n_conditions)
    keep = np.unique(
        np.linspace(0, elo.shape[0] - 1, min(MAX_RATER_DRAWS, elo.shape[0])).astype(int)
    )
    elo = elo[keep]
    n = elo.shape[0]

    def scalar(name: str, default: float) -> npt.NDArray[np.float64]:
        if name in post:
            return np.asarray(post[name].values, dtype=np.float64).reshape(-1)[keep]
        return np.full(n, default)

    bias = scalar(POSITION_VAR, 0.0)
    log_nu = scalar(TIE_VAR, -np.inf)
    q = scalar(LAPSE_VAR, 0.0)
    share = np.asarray(post[TYPE_SHARE_VAR].values, dtype=np.float64).reshape(-1, len(RATER_TYPES))
    share = share[keep]

    cells = rater_cells(data, davidson=options.davidson)
    c = cells.random_choice
    x = ELO_SLOPE * (elo[:, cells.pair_a] - elo[:, cells.pair_b] + bias[:, None])
    if options.davidson:
        log_total = np.logaddexp(np.logaddexp(x / 2, -x / 2), log_nu[:, None])
        log_probs = np.stack(
            [x / 2 - log_total, -x / 2 - log_total, log_nu[:, None] - log_total], 2
        )
    else:
        log_probs = np.stack([-np.logaddexp(0, -x), -np.logaddexp(0, x)], 2)
    model_prob = np.exp(log_probs).reshape(n, -1)  # (draw, column)
    counts = sparse.csr_array(
        (cells.n, (cells.rater, cells.column)), shape=(len(data.raters), model_prob.shape[1])
    )
    type_lapse = np.stack(
        [np.broadcast_to(t, n) for t in rater_type_lapses(q)], axis=1
    )  # (draw, type)
    log_weight = np.empty((n, len(data.raters), len(RATER_TYPES)))
    gc, gw = data.golden_correct.astype(float), data.golden_wrong.astype(float)
    for t in range(len(RATER_TYPES)):
        qt = type_lapse[:, t]
        with np.errstate(divide="ignore"):
            column = np.log(qt[:, None] * c + (1 - qt[:, None]) * model_prob)  # (draw, column)
            golden = gc[None, :] * np.log(1 - qt[:, None] * (1 - c)) + gw[None, :] * np.log(
                qt[:, None] * (1 - c)
            )
        loglik = (counts @ column.T).T  # (draw, rater)
        log_weight[:, :, t] = (
            np.log(share[:, t])[:, None] + loglik + np.where(np.isfinite(golden), golden, -np.inf)
        )
    responsibility = np.exp(log_weight - logsumexp(log_weight, axis=2, keepdims=True))
    rater_lapse = np.einsum("drt,dt->dr", responsibility, type_lapse)
    tail = (1 - INTERVAL_PROB) / 2
    lapse = np.stack(
        [
            np.median(rater_lapse, axis=0),
            np.quantile(rater_lapse, tail, axis=0),
            np.quantile(rater_lapse, 1 - tail, axis=0),
        ]
    )
    return lapse, responsibility[:, :, -1].mean(axis=0)


def _median_response(votes: pd.DataFrame, index: pd.Index) -> npt.NDArray[np.float64]:
    if "response_ms" not in votes.columns:
        return np.full(len(index), np.nan)
    ms = pd.to_numeric(votes["response_ms"], errors="coerce")
    medians = ms.groupby(votes["rater"].to_numpy()).median()
    return medians.reindex(index).to_numpy(dtype=np.float64)


def _reasons(
    *,
    p_random: float,
    wrong: int,
    total: int,
    accuracy: float,
    picks_a: int,
    picks_side: int,
    median_ms: float,
) -> list[str]:
    why: list[str] = []
    if math.isfinite(p_random) and p_random >= RANDOM_TYPE_EXCLUDE:
        why.append(f"answers at random (posterior probability {p_random:.2f})")
    if wrong > GOLDEN_WRONG_ALLOWED and accuracy < GOLDEN_ACCURACY_MIN:
        why.append(f"failed {wrong} of {total} golden trials")
    if picks_side >= SIDE_MIN_VOTES:
        p_value = binomtest(picks_a, picks_side, 0.5).pvalue
        if p_value < SIDE_P_VALUE:
            side = "left (A)" if picks_a * 2 > picks_side else "right (B)"
            share = max(picks_a, picks_side - picks_a) / picks_side
            why.append(f"chose the {side} stimulus in {share:.0%} of {picks_side} votes")
    if math.isfinite(median_ms) and median_ms < FAST_RESPONSE_MS:
        why.append(f"median response {median_ms:.0f} ms, under {FAST_RESPONSE_MS / 1000:g} s")
    return why
