"""Simulated pairwise studies with known truth, for calibration, benchmarks and planning.

The generator is written from the study's description, not from the fitting code: each
codec reaches the anchor's quality with a known factor of its bits, so its true BD-rate is
``(factor - 1) * 100`` percent, whatever the model used to analyse the votes. Votes come
from a Bradley-Terry model on the Elo scale with the complications real studies have:

- content dependence: on image i the Elo differences are scaled by ``k_i`` (log-normal);
- raters of varying reliability: rater r answers at random (50/50) with probability
  ``q_r``; most raters are good, some mediocre, a few answer at random throughout;
- golden trials (the original against a heavily degraded copy), answered correctly
  unless the rater answers at random;
- a left/right position bias, and optionally ties from a Davidson model.

The default design is PICO-like: 6 codecs x 8 rates x 30 images, 75,000 votes from 600
raters (Apple's PICO study had 74,925 votes from 610 raters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Elo points per factor of 10 in the odds (kept here so the generator stands alone).
_ELO_SCALE: Final = 400.0

#: Condition names of golden trials, as Codec Arena exports them.
GOLDEN_REFERENCE: Final = "golden-reference"
GOLDEN_DEGRADED: Final = "golden-degraded"
#: An Elo difference no observer misjudges (the original against a golden degraded copy).
_CERTAIN_ELO: Final = 1e4


def _default_codecs() -> dict[str, float]:
    # Rate factor at equal quality against the anchor ``vvc``: a codec needs FACTOR times
    # the anchor's bits for the same Elo. Loosely the PICO paper's field.
    return {"vvc": 1.0, "pico": 0.42, "mric": 0.55, "hific": 0.62, "jpegai": 0.85, "av1": 1.12}


@dataclass(frozen=True)
class SimulationDesign:
    """Parameters of a simulated study; the defaults are PICO-like.

    Attributes
    ----------
    codecs : dict of str to float
        Rate factor of each codec at equal quality against the anchor (1.0 for it).
    anchor : str
        The anchor codec.
    n_rates : int
        Rate points per codec.
    rate_range : tuple of float
        Lowest and highest nominal anchor rate, bpp; the points are spaced evenly in log.
    rate_shift : float
        Each codec's rate grid is shifted by a random factor in
        ``[1 / rate_shift, rate_shift]``, so Elo ranges overlap only partly.
    n_images : int
        Source images.
    image_rate_sigma : float
        Log-normal sigma of an image's rate (content difficulty).
    rate_jitter : float
        Log-normal sigma of a condition's rate on one image around its rate-matched value.
    elo_per_ln_bpp : float
        True Elo gained per unit of ln(bpp), the same for every codec.
    image_scale_sigma : float
        Log-normal sigma of the per-image scale of Elo differences.
    n_votes : int
        Counted (non-golden) votes.
    n_raters : int
        Raters.
    rater_mix : tuple of (float, float, float)
        Shares of good, mediocre and random raters.
    good_lapse, mediocre_lapse : tuple of float
        Beta(a, b) of the random-answer probability of good and mediocre raters.
    rater_activity_sigma : float
        Log-normal sigma of how many votes a rater gives.
    golden_share : float
        Golden trials per counted vote.
    position_bias : float
        Elo points added to the left (A) stimulus.
    tie_nu : float
        Davidson tie parameter (0: forced choice, no ties).
    max_level_gap : int
        Largest difference of rate level between the two conditions of a trial.
    """

    codecs: dict[str, float] = field(default_factory=_default_codecs)
    anchor: str = "vvc"
    n_rates: int = 8
    rate_range: tuple[float, float] = (0.04, 0.5)
    rate_shift: float = 1.15
    n_images: int = 30
    image_rate_sigma: float = 0.35
    rate_jitter: float = 0.05
    elo_per_ln_bpp: float = 450.0
    image_scale_sigma: float = 0.25
    n_votes: int = 75_000
    n_raters: int = 600
    rater_mix: tuple[float, float, float] = (0.8, 0.15, 0.05)
    good_lapse: tuple[float, float] = (1.0, 20.0)
    mediocre_lapse: tuple[float, float] = (3.0, 5.0)
    rater_activity_sigma: float = 0.5
    golden_share: float = 0.04
    position_bias: float = 20.0
    tie_nu: float = 0.0
    max_level_gap: int = 1


@dataclass(frozen=True)
class SimulatedStudy:
    """A simulated study and the truth behind it.

    Attributes
    ----------
    votes : DataFrame
        In the ``votes.csv`` format (with golden rows), condition_a shown on the left.
    conditions : DataFrame
        In the ``conditions.csv`` format.
    anchor : str
        Anchor codec.
    true_elo : Series
        Elo of each condition (pooled over images, mean 0), by condition.
    true_bd_rate : dict of str to float
        True BD-rate of each non-anchor codec, percent.
    true_lapse : Series
        Random-answer probability of each rater, by rater.
    image_scale : Series
        Scale of Elo differences on each image, by image.
    design : SimulationDesign
    rater_activity : Series or None
        Relative rate at which each rater gives votes, by rater (sums to 1).
    """

    votes: pd.DataFrame
    conditions: pd.DataFrame
    anchor: str
    true_elo: pd.Series
    true_bd_rate: dict[str, float]
    true_lapse: pd.Series
    image_scale: pd.Series
    design: SimulationDesign
    rater_activity: pd.Series | None = None


def simulate_study(design: SimulationDesign | None = None, *, seed: int) -> SimulatedStudy:
    """Simulate a pairwise study from known qualities, rater reliabilities and content.

    Parameters
    ----------
    design : SimulationDesign, optional
        The study; PICO-like when omitted.
    seed : int
        Seed of the generator: the same seed gives the same study.

    Returns
    -------
    SimulatedStudy

    Raises
    ------
    ValueError
        If the anchor is not among the codecs or a count is not positive.
    """
    design = SimulationDesign() if design is None else design
    if design.anchor not in design.codecs:
        raise ValueError(f"anchor {design.anchor!r} is not among the codecs")
    if min(design.n_votes, design.n_raters, design.n_images, design.n_rates) < 1:
        raise ValueError("counts must be positive")
    rng = np.random.default_rng(seed)
    conditions, true_elo, level = _conditions(design, rng)
    labels = true_elo.index.to_numpy()
    images = np.array([f"img{i:03d}" for i in range(design.n_images)])
    image_scale = np.exp(rng.normal(0.0, design.image_scale_sigma, design.n_images))
    image_scale /= np.exp(np.mean(np.log(image_scale)))

    lapse = _rater_lapses(design, rng)
    raters = np.array([f"r{i:04d}" for i in range(design.n_raters)])
    activity = np.exp(rng.normal(0.0, design.rater_activity_sigma, design.n_raters))
    rater_idx = rng.choice(design.n_raters, design.n_votes, p=activity / activity.sum())

    a_idx, b_idx = _pairs(level, design.max_level_gap, design.n_votes, rng)
    image_idx = rng.integers(0, design.n_images, design.n_votes)
    elo = true_elo.to_numpy()
    diff = image_scale[image_idx] * (elo[a_idx] - elo[b_idx]) + design.position_bias
    choice = observe(diff, lapse[rater_idx], tie_nu=design.tie_nu, rng=rng)
    votes = pd.DataFrame(
        {
            "rater": raters[rater_idx],
            "image": images[image_idx],
            "condition_a": labels[a_idx],
            "condition_b": labels[b_idx],
            "choice": choice,
            "golden": 0,
            "response_ms": rng.integers(1500, 9000, design.n_votes),
        }
    )
    golden = _golden_votes(design, rng, raters, lapse, activity, images)
    votes = pd.concat([votes, golden], ignore_index=True)
    votes = votes.iloc[rng.permutation(len(votes))].reset_index(drop=True)
    true_bd = {
        codec: (factor - 1.0) * 100.0
        for codec, factor in design.codecs.items()
        if codec != design.anchor
    }
    return SimulatedStudy(
        votes=votes,
        conditions=conditions,
        anchor=design.anchor,
        true_elo=true_elo,
        true_bd_rate=true_bd,
        true_lapse=pd.Series(lapse, index=raters, name="lapse"),
        image_scale=pd.Series(image_scale, index=images, name="scale"),
        design=design,
        rater_activity=pd.Series(activity / activity.sum(), index=raters, name="activity"),
    )


def simulate_answers(
    study: SimulatedStudy, trials: pd.DataFrame, *, rng: np.random.Generator
) -> pd.DataFrame:
    """Answers of the study's simulated raters to trials chosen elsewhere (a scheduler).

    The same observers as :func:`simulate_study`: on image i the Elo difference is scaled
    by the image's scale, the left stimulus gets the position bias, ties follow the
    design's Davidson parameter, and each rater answers at random with their lapse
    probability. A trial between :data:`GOLDEN_REFERENCE` and :data:`GOLDEN_DEGRADED` is
    golden: the reference wins unless the rater answers at random.

    Parameters
    ----------
    study : SimulatedStudy
        The truth.
    trials : DataFrame
        Columns ``rater, image, condition_a, condition_b`` (condition_a on the left).
    rng : numpy.random.Generator

    Returns
    -------
    DataFrame
        The trials with ``choice``, ``golden`` (0/1) and ``response_ms``, in the
        ``votes.csv`` format.

    Raises
    ------
    KeyError
        If a trial names an unknown rater, image or condition.
    """
    design = study.design
    n = len(trials)
    a_name = trials["condition_a"].to_numpy().astype(str)
    b_name = trials["condition_b"].to_numpy().astype(str)
    golden_names = {GOLDEN_REFERENCE, GOLDEN_DEGRADED}
    golden = np.isin(a_name, list(golden_names)) | np.isin(b_name, list(golden_names))
    elo = study.true_elo
    e_a = np.where(golden, 0.0, elo.reindex(np.where(golden, elo.index[0], a_name)).to_numpy())
    e_b = np.where(golden, 0.0, elo.reindex(np.where(golden, elo.index[0], b_name)).to_numpy())
    if np.isnan(e_a).any() or np.isnan(e_b).any():
        raise KeyError("a trial names a condition the study does not have")
    scale = study.image_scale.loc[trials["image"].to_numpy()].to_numpy()
    lapse = study.true_lapse.loc[trials["rater"].to_numpy()].to_numpy()
    difference = scale * (e_a - e_b) + design.position_bias
    # A golden trial's original is better than anything: its rater errs only at random.
    certain = np.where(a_name == GOLDEN_REFERENCE, _CERTAIN_ELO, -_CERTAIN_ELO)
    difference = np.where(golden, certain, difference)
    return trials.assign(
        choice=observe(difference, lapse, tie_nu=design.tie_nu, rng=rng),
        golden=golden.astype(int),
        response_ms=rng.integers(1500, 9000, n),
    )


def observe(
    elo_difference: npt.ArrayLike,
    lapse: npt.ArrayLike,
    *,
    tie_nu: float = 0.0,
    rng: np.random.Generator,
) -> npt.NDArray[np.str_]:
    """The answers of simulated observers to trials: ``"a"``, ``"b"`` or ``"tie"``.

    The observer of every simulation here (:func:`simulate_study`,
    :func:`simulate_answers`, and ``manage.py simulate_raters``, which rehearses a study
    through the rater API): Bradley-Terry on the Elo scale with Davidson ties,
    ``P(a) : P(b) : P(tie) = e^(x/2) : e^(-x/2) : nu`` with
    ``x = ln(10) / 400 * elo_difference``, and with probability ``lapse`` an answer at
    random (a or b, 50/50) instead.

    Parameters
    ----------
    elo_difference : array_like
        Quality of stimulus a minus that of b, Elo points, as the observer sees it (any
        per-image scale and left bias applied), one per trial.
    lapse : array_like
        Probability of answering at random, per trial (or one for all).
    tie_nu : float
        Davidson's tie parameter; 0 gives no ties.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of str
    """
    difference = np.atleast_1d(np.asarray(elo_difference, dtype=np.float64))
    n = difference.size
    # Beyond +-50 in x the answer is certain; the clip keeps exp() finite.
    x = np.clip(math.log(10.0) / _ELO_SCALE * difference, -50.0, 50.0)
    weight_a, weight_b = np.exp(x / 2), np.exp(-x / 2)
    total = weight_a + weight_b + tie_nu
    u = rng.random(n)
    model_choice = np.where(
        u < weight_a / total, "a", np.where(u < (weight_a + weight_b) / total, "b", "tie")
    )
    at_random = rng.random(n) < np.broadcast_to(np.asarray(lapse, dtype=np.float64), (n,))
    random_choice = np.where(rng.random(n) < 0.5, "a", "b")
    return np.where(at_random, random_choice, model_choice)


def _conditions(
    design: SimulationDesign, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.Series, npt.NDArray[np.int64]]:
    """Condition table, true pooled Elo (mean 0) and the rate level of each condition."""
    nominal = np.geomspace(*design.rate_range, design.n_rates)
    difficulty = np.exp(rng.normal(0.0, design.image_rate_sigma, design.n_images))
    rows = []
    levels = []
    for codec, factor in design.codecs.items():
        shift = 1.0 if codec == design.anchor else _log_uniform(rng, design.rate_shift)
        for level, rate in enumerate(nominal):
            levels.append(level)
            jitter = np.exp(rng.normal(0.0, design.rate_jitter, design.n_images))
            for i in range(design.n_images):
                bpp = rate * factor * shift * difficulty[i] * jitter[i]
                rows.append((f"{codec}-{level}", codec, f"img{i:03d}", bpp))
    conditions = pd.DataFrame(rows, columns=["condition", "codec", "image", "bpp"])
    mean_bpp = conditions.groupby("condition", sort=False)["bpp"].mean()
    codec_of = conditions.groupby("condition", sort=False)["codec"].first()
    factor_of = codec_of.map(design.codecs).astype(float)
    # Elo linear in ln(bpp / factor), with the same slope for every codec: ln(bpp) is then
    # a straight line in Elo, shifted by ln(factor), so the BD-rate is factor - 1 exactly.
    elo = design.elo_per_ln_bpp * (np.log(mean_bpp) - np.log(factor_of))
    true_elo = (elo - elo.mean()).rename("elo")
    return conditions, true_elo, np.asarray(levels, dtype=np.int64)


def _log_uniform(rng: np.random.Generator, spread: float) -> float:
    return float(np.exp(rng.uniform(-math.log(spread), math.log(spread))))


def _rater_lapses(design: SimulationDesign, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    kind = rng.choice(3, design.n_raters, p=np.asarray(design.rater_mix) / sum(design.rater_mix))
    good = rng.beta(*design.good_lapse, design.n_raters)
    mediocre = rng.beta(*design.mediocre_lapse, design.n_raters)
    return np.where(kind == 0, good, np.where(kind == 1, mediocre, 1.0))


def _pairs(
    level: npt.NDArray[np.int64], max_gap: int, n: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Ordered pairs of distinct conditions at most ``max_gap`` rate levels apart."""
    allowed = np.abs(level[:, None] - level[None, :]) <= max_gap
    np.fill_diagonal(allowed, False)
    a_list, b_list = np.nonzero(allowed)
    pick = rng.integers(0, a_list.size, n)
    return a_list[pick].astype(np.int64), b_list[pick].astype(np.int64)


def _golden_votes(
    design: SimulationDesign,
    rng: np.random.Generator,
    raters: npt.NDArray[np.str_],
    lapse: npt.NDArray[np.float64],
    activity: npt.NDArray[np.float64],
    images: npt.NDArray[np.str_],
) -> pd.DataFrame:
    n = round(design.golden_share * design.n_votes)
    rater_idx = rng.choice(design.n_raters, n, p=activity / activity.sum())
    reference_left = rng.random(n) < 0.5
    at_random = rng.random(n) < lapse[rater_idx]
    picks_reference = np.where(at_random, rng.random(n) < 0.5, True)
    picks_left = picks_reference == reference_left
    return pd.DataFrame(
        {
            "rater": raters[rater_idx],
            "image": rng.choice(images, n),
            "condition_a": np.where(reference_left, GOLDEN_REFERENCE, GOLDEN_DEGRADED),
            "condition_b": np.where(reference_left, GOLDEN_DEGRADED, GOLDEN_REFERENCE),
            "choice": np.where(picks_left, "a", "b"),
            "golden": 1,
            "response_ms": rng.integers(1500, 9000, n),
        }
    )
