"""Bradley-Terry models of pairwise votes on the Elo scale, and their fitting.

The probability that condition a is judged closer to the original than condition b is

    P(a beats b) = 1 / (1 + 10^(-(E_a - E_b) / 400)) = sigmoid(ELO_SLOPE * (E_a - E_b)),

with one Elo score E per condition. Only differences are identified by the data, so the
scores are given a sum-to-zero constraint (``pm.ZeroSumNormal``): the reported Elo is
relative to the mean of all conditions, which is 0. No condition is singled out as the
reference.

Three models share this core (:class:`ModelName`):

``bt``
    One score per condition, pooled over raters and images.
``bt-rater``
    Raters are of three latent types: attentive raters answer at random with probability
    ``q`` (estimated), half-attentive ones with probability ``(1 + q) / 2``, random raters
    always; the shares of the types are estimated (a hierarchical prior across raters),
    golden answers inform them, and each rater's type is marginalised. A random answer is
    P = q/2 + (1 - q) P_BT, as in Google's elo_rater_model.
``bt-image``
    The Elo differences on image i are scaled by ``k_i`` (log-normal, partially pooled,
    geometric mean 1): content changes how visible the differences are.

Ties follow Davidson's model (``ties="davidson"``) or count half a win each
(``ties="half"``). A left/right position bias adds ``position_bias`` Elo points to the
condition shown as A (on the left).

Every likelihood is a ``pm.Potential`` of counts: votes are aggregated per ordered pair
(``bt``), per image and ordered pair (``bt-image``) or per rater and ordered pair
(``bt-rater``), so the cost of a gradient grows with the number of distinct cells, never
with a logarithm per vote.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
from xarray import DataTree

from analysis.types import (
    CHOICE_A,
    CHOICE_B,
    CHOICE_TIE,
    GOLDEN_REFERENCE_NAMES,
    OUTCOME_A,
    OUTCOME_B,
    OUTCOME_TIE,
    PairCounts,
    SamplerSettings,
    VoteData,
)

# One seed, one set of draws, in every process. With fast-math, the numba kernels that
# nutpie runs may reassociate sums one way when compiled in the process and another
# when read back from PyTensor's on-disk cache (a fit gave other draws on a fresh cache
# than on a warm one); strict IEEE arithmetic does not, for a few tenths of a second
# of sampling on the plain model and none measurable on the others (BENCHMARKS.md).
pytensor.config.numba__fastmath = False

#: Elo points per factor of 10 in the odds of winning (the chess convention).
ELO_SCALE: Final = 400.0
#: Slope of the logistic in Elo units: P(a beats b) = sigmoid(ELO_SLOPE * (E_a - E_b)).
ELO_SLOPE: Final = math.log(10.0) / ELO_SCALE

#: Credit a tie gives each side under ``ties="half"``, in wins.
TIE_CREDIT: Final = 0.5

#: Name of the condition dimension of the fitted model.
CONDITION_DIM: Final = "condition"
#: Name of the Elo variable in the posterior.
ELO_VAR: Final = "elo"
#: Names of the other variables the models may have.
POSITION_VAR: Final = "position_bias"
#: The variable ``bt-rater`` samples: the Elo scores times (1 - lapse).
DAMPED_ELO_VAR: Final = "elo_damped"
TIE_VAR: Final = "tie_log_nu"
LAPSE_VAR: Final = "lapse"
TYPE_SHARE_VAR: Final = "rater_type_share"
IMAGE_SCALE_VAR: Final = "image_log_scale"
IMAGE_SIGMA_VAR: Final = "image_scale_sigma"
#: Dimension of the rater types of ``bt-rater``.
RATER_TYPE_DIM: Final = "rater_type"
#: The rater types and their attention: the share of answers not given at random, out of
#: what an attentive rater gives (an attentive rater lapses with probability q, a
#: half-attentive one with (1 + q) / 2, a random one always).
RATER_TYPES: Final = ("attentive", "half-attentive", "random")
RATER_ATTENTION: Final = (1.0, 0.5, 0.0)

#: nutpie's mass-matrix adaptation. The Elo scores of a study whose pairs join nearby
#: rates only are strongly correlated along the rate axis (differences add up along
#: the chain of comparisons); a diagonal mass matrix leaves that direction slow (bulk
#: ESS ~600 of 4,000 draws on the PICO-like simulation, R-hat 1.01-1.015), the low-rank
#: correction captures it (ESS ~7,000-9,000) at no extra cost per draw.
DEFAULT_ADAPTATION: Final = "low_rank"

#: Sampler defaults (see :class:`analysis.types.SamplerSettings`).
DEFAULT_DRAWS: Final = SamplerSettings().draws
DEFAULT_TUNE: Final = SamplerSettings().tune
DEFAULT_CHAINS: Final = SamplerSettings().chains

#: Share of counted votes on condition pairs shown in both orders above which
#: ``position_bias="auto"`` includes the position-bias term: sides were then randomised,
#: so the file records which stimulus was on the left. Imported studies that list each
#: pair in one fixed order (mucped23 sorts them) fall below it.
POSITION_BIAS_MIN_SWAPPED_SHARE: Final = 0.5


class ModelName(StrEnum):
    """The models ``--model`` chooses from."""

    BT = "bt"
    BT_RATER = "bt-rater"
    BT_IMAGE = "bt-image"


class TieModel(StrEnum):
    """How ties enter the likelihood."""

    DAVIDSON = "davidson"
    """Davidson (1970): P(tie) proportional to nu * sqrt(pi_a pi_b), nu estimated."""
    HALF = "half"
    """A tie counts as half a win for each side."""


#: The default model; docs/analysis.md says why.
DEFAULT_MODEL: Final = ModelName.BT_RATER
#: The default treatment of ties.
DEFAULT_TIES: Final = TieModel.DAVIDSON


@dataclass(frozen=True)
class BTPriors:
    """Priors of the Bradley-Terry models.

    Attributes
    ----------
    elo_sigma : float
        Scale, in Elo points, of the zero-sum normal prior on the condition scores.
        Weakly informative: published codec studies span about 1,200 Elo from their
        worst to their best condition (Google's mucped23 jpegli study: standard
        deviation 357 over 31 conditions), so 600 keeps such spreads within about one
        prior standard deviation of the mean while ruling out scores thousands of
        points apart, which no data set of this kind can support.
    position_sigma : float
        Standard deviation, in Elo points, of the normal prior on the left/right bias.
        A bias of 100 Elo (odds 1.8 to 1 between identical stimuli) would be extreme.
    tie_log_nu_mu, tie_log_nu_sigma : float
        Normal prior on ln(nu), Davidson's tie parameter: nu = 0.3 gives about 13% ties
        between equal conditions; the scale lets the data move it by factors of 20.
    lapse_alpha, lapse_beta : float
        Beta prior on q, the probability that an attentive rater answers at random:
        mean 0.2, most mass below 0.5.
    type_concentration : tuple of float
        Dirichlet prior on the shares of attentive, half-attentive and random raters:
        most raters expected attentive, weakly.
    image_scale_sigma : float
        Scale of the half-normal prior on the spread (log-normal sigma) of the
        per-image scale of Elo differences; 0.5 allows images whose differences are
        half or double as visible as on a typical image.
    """

    elo_sigma: float = 600.0
    position_sigma: float = 50.0
    tie_log_nu_mu: float = math.log(0.3)
    tie_log_nu_sigma: float = 1.5
    lapse_alpha: float = 1.0
    lapse_beta: float = 4.0
    type_concentration: tuple[float, float, float] = (4.0, 1.0, 1.0)
    image_scale_sigma: float = 0.5

    def __post_init__(self) -> None:
        positive = {
            "elo_sigma": self.elo_sigma,
            "position_sigma": self.position_sigma,
            "tie_log_nu_sigma": self.tie_log_nu_sigma,
            "lapse_alpha": self.lapse_alpha,
            "lapse_beta": self.lapse_beta,
            "image_scale_sigma": self.image_scale_sigma,
            **{f"type_concentration[{i}]": c for i, c in enumerate(self.type_concentration)},
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if len(self.type_concentration) != len(RATER_TYPES):
            raise ValueError(f"type_concentration needs {len(RATER_TYPES)} values")


@dataclass(frozen=True)
class ModelOptions:
    """What a model includes, once ``auto`` choices are resolved against the data.

    Attributes
    ----------
    model : ModelName
    ties : TieModel
        As asked; with no tie in the data both choices give the same posterior.
    davidson : bool
        True when the likelihood has Davidson's tie parameter (ties present and
        ``ties == "davidson"``).
    position_bias : bool
        True when the likelihood has the left/right term.
    """

    model: ModelName
    ties: TieModel
    davidson: bool
    position_bias: bool


def resolve_options(
    data: VoteData,
    *,
    model: ModelName | str = DEFAULT_MODEL,
    ties: TieModel | str = DEFAULT_TIES,
    position_bias: bool | None = None,
) -> ModelOptions:
    """Resolve the model choices against the data.

    Parameters
    ----------
    data : VoteData
        The votes.
    model : ModelName or str
        Model name.
    ties : TieModel or str
        Tie treatment.
    position_bias : bool or None
        Include the left/right term; None (auto) includes it when at least
        :data:`POSITION_BIAS_MIN_SWAPPED_SHARE` of the votes are on condition pairs shown
        in both orders.

    Returns
    -------
    ModelOptions

    Raises
    ------
    ValueError
        If ``model`` or ``ties`` is not a known name.
    """
    model = ModelName(model)
    ties = TieModel(ties)
    if position_bias is None:
        position_bias = swapped_share(data) >= POSITION_BIAS_MIN_SWAPPED_SHARE
    return ModelOptions(
        model=model,
        ties=ties,
        davidson=ties is TieModel.DAVIDSON and data.n_ties > 0,
        position_bias=bool(position_bias),
    )


def swapped_share(data: VoteData) -> float:
    """Share of votes on condition pairs that appear in both orders (A/B swapped).

    Parameters
    ----------
    data : VoteData

    Returns
    -------
    float
        In [0, 1]; 0 when there is no vote.
    """
    if data.n_votes == 0:
        return 0.0
    k = len(data.conditions)
    ordered = data.a_idx.astype(np.int64) * k + data.b_idx
    present = np.unique(ordered)
    reverse = data.b_idx.astype(np.int64) * k + data.a_idx
    return float(np.isin(reverse, present).mean())


# --- counting ----------------------------------------------------------------------------


def count_votes(votes: pd.DataFrame, conditions: pd.DataFrame) -> VoteData:
    """Turn a validated vote table into integer codes for the models.

    Golden rows (boolean ``golden`` column) are not counted as comparisons; they give
    each rater's numbers of right and wrong golden answers. A golden answer is right
    when ``golden_correct`` says so, or, without that column, when the chosen condition
    is named like the original (:data:`analysis.types.GOLDEN_REFERENCE_NAMES`); a tie
    on a golden trial is wrong.

    Parameters
    ----------
    votes : DataFrame
        A validated vote table (see :func:`analysis.io.validate_votes`).
    conditions : DataFrame
        A validated condition table; every condition in it gets a score, in order of
        first occurrence.

    Returns
    -------
    VoteData

    Raises
    ------
    ValueError
        If a counted vote names a condition not in ``conditions``, ``golden`` is not
        boolean (validate first), or no vote is left to count.
    """
    labels = tuple(pd.unique(conditions["condition"]))
    images = tuple(pd.unique(conditions["image"]))
    if "golden" in votes.columns:
        if not pd.api.types.is_bool_dtype(votes["golden"]):
            raise ValueError("golden must be boolean; pass votes through validate_votes first")
        golden_mask = votes["golden"].to_numpy(dtype=bool)
    else:
        golden_mask = np.zeros(len(votes), dtype=bool)
    counted = votes.loc[~golden_mask]
    golden = votes.loc[golden_mask]
    if counted.empty:
        raise ValueError("no votes to count")
    raters = tuple(pd.unique(pd.concat([counted["rater"], golden["rater"]])))
    position = pd.Index(labels)
    a_idx = position.get_indexer(counted["condition_a"])
    b_idx = position.get_indexer(counted["condition_b"])
    if (a_idx < 0).any() or (b_idx < 0).any():
        raise ValueError("a vote names a condition that is not in the condition table")
    image_idx = pd.Index(images).get_indexer(counted["image"])
    choice = counted["choice"].to_numpy()
    outcome = np.where(
        choice == CHOICE_A, OUTCOME_A, np.where(choice == CHOICE_B, OUTCOME_B, OUTCOME_TIE)
    ).astype(np.int8)
    rater_index = pd.Index(raters)
    correct, known = _golden_correctness(golden)
    golden_rater = rater_index.get_indexer(golden["rater"])
    n_raters = len(raters)
    return VoteData(
        conditions=labels,
        raters=raters,
        images=images,
        a_idx=a_idx.astype(np.intp),
        b_idx=b_idx.astype(np.intp),
        rater_idx=rater_index.get_indexer(counted["rater"]).astype(np.intp),
        image_idx=np.maximum(image_idx, 0).astype(np.intp),
        outcome=outcome,
        golden_correct=np.bincount(golden_rater[known & correct], minlength=n_raters).astype(
            np.int64
        ),
        golden_wrong=np.bincount(golden_rater[known & ~correct], minlength=n_raters).astype(
            np.int64
        ),
        golden_unknown=int((~known).sum()),
    )


def _golden_correctness(
    golden: pd.DataFrame,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Whether each golden answer is right, and whether that is known."""
    choice = golden["choice"].to_numpy()
    if "golden_correct" in golden.columns:
        flag = golden["golden_correct"].astype("str").str.strip().str.lower()
        known = flag.isin(["1", "0", "true", "false", "1.0", "0.0"]).to_numpy()
        correct = flag.isin(["1", "true", "1.0"]).to_numpy()
        return correct, known
    reference = {name.lower() for name in GOLDEN_REFERENCE_NAMES}
    a_ref = golden["condition_a"].str.lower().isin(reference).to_numpy()
    b_ref = golden["condition_b"].str.lower().isin(reference).to_numpy()
    known = a_ref ^ b_ref
    correct = np.where(a_ref, choice == CHOICE_A, choice == CHOICE_B)
    return correct & known, known


@dataclass(frozen=True)
class Cells:
    """Votes aggregated per group and ordered pair: counts of each outcome.

    Attributes
    ----------
    group : ndarray of int
        Group of each cell (rater or image; 0 when not grouped).
    a_idx, b_idx : ndarray of int
        Conditions of the ordered pair.
    n_a, n_b, n_tie : ndarray of float
        Wins of A, wins of B and ties (under ``half``, ties are in n_a and n_b as half
        wins and n_tie is 0).
    """

    group: npt.NDArray[np.intp]
    a_idx: npt.NDArray[np.intp]
    b_idx: npt.NDArray[np.intp]
    n_a: npt.NDArray[np.float64]
    n_b: npt.NDArray[np.float64]
    n_tie: npt.NDArray[np.float64]


def aggregate(data: VoteData, group: npt.NDArray[np.intp] | None, *, davidson: bool) -> Cells:
    """Count the outcomes of each (group, ordered pair).

    Parameters
    ----------
    data : VoteData
    group : ndarray of int or None
        A group per vote (rater or image index), or None for no grouping.
    davidson : bool
        Keep ties as a third outcome; otherwise split each into two half wins.

    Returns
    -------
    Cells
        Sorted by group, then pair.
    """
    g = np.zeros(data.n_votes, dtype=np.int64) if group is None else group.astype(np.int64)
    k = len(data.conditions)
    key = (g * k + data.a_idx) * k + data.b_idx
    unique, inverse = np.unique(key, return_inverse=True)
    n_cells = unique.size
    is_tie = data.outcome == OUTCOME_TIE
    n_a = np.bincount(inverse, data.outcome == OUTCOME_A, n_cells)
    n_b = np.bincount(inverse, data.outcome == OUTCOME_B, n_cells)
    n_tie = np.bincount(inverse, is_tie, n_cells)
    if not davidson:
        n_a = n_a + TIE_CREDIT * n_tie
        n_b = n_b + (1.0 - TIE_CREDIT) * n_tie
        n_tie = np.zeros(n_cells)
    return Cells(
        group=(unique // (k * k)).astype(np.intp),
        a_idx=((unique // k) % k).astype(np.intp),
        b_idx=(unique % k).astype(np.intp),
        n_a=n_a.astype(np.float64),
        n_b=n_b.astype(np.float64),
        n_tie=n_tie.astype(np.float64),
    )


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


# --- model builders ----------------------------------------------------------------------


def build_model(
    data: VoteData,
    *,
    options: ModelOptions | None = None,
    priors: BTPriors | None = None,
    centered: bool = True,
) -> pm.Model:
    """Build the model named in ``options`` for the votes.

    Parameters
    ----------
    data : VoteData
        From :func:`count_votes`.
    options : ModelOptions, optional
        From :func:`resolve_options`; the defaults resolved against ``data`` when omitted.
    priors : BTPriors, optional
        Prior scales; ``BTPriors()`` when omitted.
    centered : bool
        Parametrisation of hierarchical terms (``bt-image``): centered suits NUTS with
        many votes per image; non-centered has a posterior mode for the Laplace
        approximation. The posterior is the same.

    Returns
    -------
    pm.Model

    Raises
    ------
    ValueError
        If the data cannot identify the model (fewer than two conditions; ``bt-image``
        with fewer than two images).
    """
    options = resolve_options(data) if options is None else options
    if options.model is ModelName.BT_RATER:
        return build_bt_rater_model(data, options=options, priors=priors)
    if options.model is ModelName.BT_IMAGE:
        return build_bt_image_model(data, options=options, priors=priors, centered=centered)
    return build_bt_model(data, options=options, priors=priors)


def build_bt_model(
    data: VoteData | PairCounts,
    *,
    priors: BTPriors | None = None,
    options: ModelOptions | None = None,
) -> pm.Model:
    """Build the Bradley-Terry model on the Elo scale, one score per condition.

    The likelihood is a ``pm.Potential`` of count-weighted log-probabilities, one term
    per ordered pair and outcome: ``n_a log P(A) + n_b log P(B) [+ n_tie log P(tie)]``.
    It equals the sum of per-vote log-likelihoods, at a cost that grows with the number
    of distinct ordered pairs rather than votes.

    Parameters
    ----------
    data : VoteData or PairCounts
        Votes from :func:`count_votes`, or pair counts from :func:`count_pairs` (ties as
        half wins, no position term: the model of the first version).
    priors : BTPriors, optional
        Prior scales; ``BTPriors()`` when omitted.
    options : ModelOptions, optional
        Ties and position bias (``model`` is ignored); resolved against ``data`` when
        omitted.

    Returns
    -------
    pm.Model
        Coordinates ``condition`` and ``pair``; variables ``elo`` (dims ``condition``,
        sum zero) and, when included, ``position_bias`` and ``tie_log_nu``.

    Raises
    ------
    ValueError
        If there are fewer than two conditions or the arrays disagree in length.
    """
    priors = BTPriors() if priors is None else priors
    if isinstance(data, PairCounts):
        lengths = {len(data.a_idx), len(data.b_idx), len(data.wins_a), len(data.n)}
        if len(lengths) != 1:
            raise ValueError("a_idx, b_idx, wins_a and n must have the same length")
        labels = data.conditions
        cells = Cells(
            group=np.zeros(len(data.n), dtype=np.intp),
            a_idx=data.a_idx,
            b_idx=data.b_idx,
            n_a=data.wins_a,
            n_b=data.n - data.wins_a,
            n_tie=np.zeros(len(data.n)),
        )
        davidson = position_bias = False
    else:
        options = resolve_options(data) if options is None else options
        labels = data.conditions
        cells = aggregate(data, None, davidson=options.davidson)
        davidson, position_bias = options.davidson, options.position_bias
    _check_conditions(labels)
    coords = {CONDITION_DIM: list(labels), "pair": np.arange(len(cells.n_a))}
    with pm.Model(coords=coords) as model:
        a_idx = pm.Data("a_idx", cells.a_idx, dims="pair")
        b_idx = pm.Data("b_idx", cells.b_idx, dims="pair")
        n_a = pm.Data("n_a", cells.n_a, dims="pair")
        n_b = pm.Data("n_b", cells.n_b, dims="pair")
        elo, bias, log_nu = _core_variables(priors, position_bias=position_bias, davidson=davidson)
        x = ELO_SLOPE * (elo[a_idx] - elo[b_idx] + bias)
        log_a, log_b, log_tie = _outcome_log_probs(x, log_nu)
        total = n_a * log_a + n_b * log_b
        if log_tie is not None:
            total = total + pm.Data("n_tie", cells.n_tie, dims="pair") * log_tie
        pm.Potential("votes", pt.sum(total))
    return model


def build_bt_image_model(
    data: VoteData,
    *,
    options: ModelOptions | None = None,
    priors: BTPriors | None = None,
    centered: bool = True,
) -> pm.Model:
    """Build the model with a per-image scale of the Elo differences.

    On image i, ``x = ELO_SLOPE * (k_i (E_a - E_b) + bias)`` with ``ln k_i`` zero-sum
    normal of scale ``image_scale_sigma`` (half-normal prior): the geometric mean of
    the scales is 1, so ``elo`` is the score on a typical image. Votes are counted per
    image and ordered pair.

    Parameters
    ----------
    data : VoteData
    options : ModelOptions, optional
    priors : BTPriors, optional
    centered : bool
        ``ln k = image_log_scale`` with a zero-sum normal prior of scale sigma
        (centered), or ``sigma * z`` with a standard zero-sum normal ``z``
        (``image_log_scale_z``, non-centered).

    Returns
    -------
    pm.Model
        As :func:`build_bt_model`, plus ``image_scale_sigma`` and ``image_log_scale``
        (dims ``image``).

    Raises
    ------
    ValueError
        If there are fewer than two conditions or two images.
    """
    priors = BTPriors() if priors is None else priors
    options = resolve_options(data, model=ModelName.BT_IMAGE) if options is None else options
    _check_conditions(data.conditions)
    if len(data.images) < 2:
        raise ValueError("bt-image needs votes on at least two images")
    cells = aggregate(data, data.image_idx, davidson=options.davidson)
    coords = {
        CONDITION_DIM: list(data.conditions),
        "image": list(data.images),
        "cell": np.arange(len(cells.n_a)),
    }
    with pm.Model(coords=coords) as model:
        elo, bias, log_nu = _core_variables(
            priors, position_bias=options.position_bias, davidson=options.davidson
        )
        sigma = pm.HalfNormal(IMAGE_SIGMA_VAR, sigma=priors.image_scale_sigma)
        if centered:
            log_scale = pm.ZeroSumNormal(IMAGE_SCALE_VAR, sigma=sigma, dims="image")
        else:
            z = pm.ZeroSumNormal(f"{IMAGE_SCALE_VAR}_z", sigma=1.0, dims="image")
            log_scale = pm.Deterministic(IMAGE_SCALE_VAR, sigma * z, dims="image")
        image_idx = pm.Data("image_idx", cells.group, dims="cell")
        a_idx = pm.Data("a_idx", cells.a_idx, dims="cell")
        b_idx = pm.Data("b_idx", cells.b_idx, dims="cell")
        x = ELO_SLOPE * (pt.exp(log_scale)[image_idx] * (elo[a_idx] - elo[b_idx]) + bias)
        log_a, log_b, log_tie = _outcome_log_probs(x, log_nu)
        total = pm.Data("n_a", cells.n_a, dims="cell") * log_a
        total = total + pm.Data("n_b", cells.n_b, dims="cell") * log_b
        if log_tie is not None:
            total = total + pm.Data("n_tie", cells.n_tie, dims="cell") * log_tie
        pm.Potential("votes", pt.sum(total))
    return model


@dataclass(frozen=True)
class RaterCells:
    """Votes of ``bt-rater`` counted per rater, ordered pair and outcome.

    Attributes
    ----------
    pair_a, pair_b : ndarray of int
        Conditions of each distinct ordered pair.
    rater : ndarray of int
        Rater of each cell (cells are sorted by rater).
    column : ndarray of int
        ``pair * n_outcomes + outcome`` of each cell.
    n : ndarray of float
        Votes in the cell (half votes for ties under ``half``).
    n_outcomes : int
        3 with Davidson ties, else 2.
    random_choice : float
        Probability of each answer when a rater answers at random: 1/2 (A or B), or 1/3
        when the study allows ties (Davidson).
    """

    pair_a: npt.NDArray[np.intp]
    pair_b: npt.NDArray[np.intp]
    rater: npt.NDArray[np.intp]
    column: npt.NDArray[np.intp]
    n: npt.NDArray[np.float64]
    n_outcomes: int
    random_choice: float


def rater_cells(data: VoteData, *, davidson: bool) -> RaterCells:
    """Count the votes per rater, ordered pair and outcome.

    Parameters
    ----------
    data : VoteData
    davidson : bool
        Keep ties as an outcome; otherwise a tie is half an A and half a B.

    Returns
    -------
    RaterCells
    """
    k = len(data.conditions)
    pair_key = data.a_idx.astype(np.int64) * k + data.b_idx
    pairs, pair_of_vote = np.unique(pair_key, return_inverse=True)
    n_outcomes = 3 if davidson else 2
    if davidson:
        columns = pair_of_vote * n_outcomes + data.outcome
        weights = np.ones(data.n_votes)
        raters = data.rater_idx.astype(np.int64)
    else:
        tie = data.outcome == OUTCOME_TIE
        # A tie is half a win for each side: one half vote in each column.
        base = pair_of_vote * n_outcomes
        columns = np.concatenate(
            [base + np.where(tie, OUTCOME_A, data.outcome), base[tie] + OUTCOME_B]
        )
        weights = np.concatenate([np.where(tie, TIE_CREDIT, 1.0), np.full(tie.sum(), TIE_CREDIT)])
        raters = np.concatenate([data.rater_idx, data.rater_idx[tie]]).astype(np.int64)
    n_columns = pairs.size * n_outcomes
    key = raters * n_columns + columns
    unique, inverse = np.unique(key, return_inverse=True)
    return RaterCells(
        pair_a=(pairs // k).astype(np.intp),
        pair_b=(pairs % k).astype(np.intp),
        rater=(unique // n_columns).astype(np.intp),
        column=(unique % n_columns).astype(np.intp),
        n=np.bincount(inverse, weights, unique.size),
        n_outcomes=n_outcomes,
        random_choice=1.0 / n_outcomes,
    )


def rater_type_lapses(lapse: Any) -> list[Any]:
    """Random-answer probability of each rater type, given the attentive one's ``lapse``.

    Parameters
    ----------
    lapse : float, ndarray or tensor
        q, the attentive type's probability of answering at random.

    Returns
    -------
    list
        One entry per :data:`RATER_TYPES`: ``1 - attention * (1 - q)``.
    """
    return [1.0 - attention * (1.0 - lapse) for attention in RATER_ATTENTION]


def build_bt_rater_model(
    data: VoteData, *, options: ModelOptions | None = None, priors: BTPriors | None = None
) -> pm.Model:
    """Build the model in which raters sometimes answer at random.

    A rater of type t answers at random with probability ``q_t`` and otherwise follows
    the Bradley-Terry (or Davidson) model, so an answer has probability
    ``q_t c + (1 - q_t) P_BT`` with c the chance of that answer at random (1/2; 1/3
    when ties are possible). The types are attentive (``q_t = q``, estimated),
    half-attentive (``(1 + q) / 2``) and random (1); each rater's type is marginalised
    with the estimated type shares as its prior, and golden answers count as votes
    that are right unless given at random. The log-likelihood of a rater under a type
    is a sum over the rater's (ordered pair, outcome) counts of per-pair terms, so a
    gradient costs one multiply-add per count and type and no logarithm per vote.

    Parameters
    ----------
    data : VoteData
    options : ModelOptions, optional
    priors : BTPriors, optional

    Returns
    -------
    pm.Model
        As :func:`build_bt_model`, plus ``lapse`` (q) and ``rater_type_share`` (dims
        ``rater_type``).

    Raises
    ------
    ValueError
        If there are fewer than two conditions.
    """
    priors = BTPriors() if priors is None else priors
    options = resolve_options(data, model=ModelName.BT_RATER) if options is None else options
    _check_conditions(data.conditions)
    cells = rater_cells(data, davidson=options.davidson)
    n_raters = len(data.raters)
    c = cells.random_choice
    # The random type's log-likelihood does not depend on any parameter.
    votes_per_rater = np.bincount(cells.rater, cells.n, n_raters)
    random_golden = data.golden_correct * math.log(c) + data.golden_wrong * math.log(1.0 - c)
    random_loglik = votes_per_rater * math.log(c) + random_golden
    coords = {
        CONDITION_DIM: list(data.conditions),
        "pair": np.arange(cells.pair_a.size),
        RATER_TYPE_DIM: list(RATER_TYPES),
        "rater": list(data.raters),
    }
    with pm.Model(coords=coords) as model:
        lapse = pm.Beta(LAPSE_VAR, alpha=priors.lapse_alpha, beta=priors.lapse_beta)
        # The votes pin the Elo differences damped by the lapses, (1 - q) (E_a - E_b),
        # much better than E and q apart; sampling E (1 - q), whose prior given q is the
        # zero-sum normal of scale elo_sigma (1 - q), keeps the prior on E unchanged and
        # decorrelates the posterior.
        damped = pm.ZeroSumNormal(
            DAMPED_ELO_VAR, sigma=priors.elo_sigma * (1.0 - lapse), dims=CONDITION_DIM
        )
        elo = pm.Deterministic(ELO_VAR, damped / (1.0 - lapse), dims=CONDITION_DIM)
        _, bias, log_nu = _core_variables(
            priors,
            position_bias=options.position_bias,
            davidson=options.davidson,
            with_elo=False,
        )
        share = pm.Dirichlet(
            TYPE_SHARE_VAR, a=np.asarray(priors.type_concentration), dims=RATER_TYPE_DIM
        )
        pair_a = pm.Data("pair_a", cells.pair_a, dims="pair")
        pair_b = pm.Data("pair_b", cells.pair_b, dims="pair")
        x = ELO_SLOPE * (elo[pair_a] - elo[pair_b] + bias)
        log_probs = [lp for lp in _outcome_log_probs(x, log_nu) if lp is not None]
        # (pair, outcome) flattened, as RaterCells.column counts them.
        model_prob = pt.exp(pt.stack(log_probs, axis=1)).reshape((-1,))
        q_types = rater_type_lapses(lapse)[:-1]
        q_column = pt.stack(q_types)[None, :]
        # (column, type): log-probability of one count of the column under the type.
        column_loglik = pt.log(q_column * c + (1.0 - q_column) * model_prob[:, None])
        per_cell = cells.n[:, None] * column_loglik[cells.column]
        loglik = pt.zeros((n_raters, len(q_types)))[cells.rater].inc(per_cell)
        golden = data.golden_correct[:, None] * pt.log(
            1.0 - q_column * (1.0 - c)
        ) + data.golden_wrong[:, None] * pt.log(q_column * (1.0 - c))
        by_type = pt.concatenate([loglik + golden, random_loglik[:, None]], axis=1)
        by_type = by_type + pt.log(share)[None, :]
        pm.Potential("votes", pt.sum(pt.logsumexp(by_type, axis=1)))
    return model


def _check_conditions(labels: tuple[str, ...]) -> None:
    if len(labels) < 2:
        raise ValueError(f"need at least two conditions, got {len(labels)}")


def _core_variables(
    priors: BTPriors, *, position_bias: bool, davidson: bool, with_elo: bool = True
) -> tuple[Any, Any, Any]:
    """Elo scores (or None), position bias (or 0) and ln(nu) (or None), in a model."""
    elo = (
        pm.ZeroSumNormal(ELO_VAR, sigma=priors.elo_sigma, dims=CONDITION_DIM) if with_elo else None
    )
    bias: Any = (
        pm.Normal(POSITION_VAR, mu=0.0, sigma=priors.position_sigma) if position_bias else 0.0
    )
    log_nu = (
        pm.Normal(TIE_VAR, mu=priors.tie_log_nu_mu, sigma=priors.tie_log_nu_sigma)
        if davidson
        else None
    )
    return elo, bias, log_nu


def _outcome_log_probs(x: Any, log_nu: Any) -> tuple[Any, Any, Any]:
    """ln P(A), ln P(B) and ln P(tie) (None without Davidson ties) for logit x."""
    if log_nu is None:
        return -pt.log1pexp(-x), -pt.log1pexp(x), None
    log_total = pt.logaddexp(pt.logaddexp(x / 2.0, -x / 2.0), log_nu)
    return x / 2.0 - log_total, -x / 2.0 - log_total, log_nu - log_total


def fit_model(
    model: pm.Model,
    *,
    random_seed: int,
    draws: int = DEFAULT_DRAWS,
    tune: int = DEFAULT_TUNE,
    chains: int = DEFAULT_CHAINS,
    adaptation: str = DEFAULT_ADAPTATION,
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
    adaptation : str
        nutpie's mass-matrix adaptation: ``low_rank`` (default) or ``diag``.

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
        nuts={"adaptation": adaptation},
    )
