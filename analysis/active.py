"""Active pair selection: ask the comparison that narrows the reported BD-rates most.

Strategy ``active`` of issue 8. A study reports each codec's BD-rate against the anchor
with a 95% interval and stops when every half-width is at most a target (e.g. 5
percentage points). Google's elo_rater_model and ASAP choose the pair with the largest
expected information gain about the *scores*; what the study reports is a handful of
BD-rates, and most of the information about the scores (the ends of the curves, the
shape of one codec's curve far from the anchor's range) does not move them. So the
planner scores a pair by how much one answer is expected to shrink the BD-rate
variances that still stand between the study and its stopping rule.

The model of one refresh, from a Laplace fit (:func:`analysis.laplace.fit_laplace`):

- condition scores ``E ~ N(m, Sigma)``;
- each codec's BD-rate linearised over that posterior, ``b_c(E) ~ b_c(m) + g_c^T (E - m)``,
  ``g_c`` by least squares of the BD-rate of posterior draws on their scores (the same
  PCHIP BD-rate the report computes, :func:`analysis.bdrate.bd_rate_draws`), so
  ``Var b_c ~ g_c^T Sigma g_c``;
- one answer on the pair (i, j) adds Fisher information
  ``I_ij = s^2 sum_t share_t (1 - q_t)^2 (p (1 - p))^2 / (P_t (1 - P_t))`` along
  ``u = e_i - e_j`` (s = ln 10 / 400, p the Bradley-Terry probability at the mean,
  ``P_t = q_t / 2 + (1 - q_t) p`` for raters who answer at random with probability
  ``q_t``; ``s^2 p (1 - p)`` for attentive raters), and the posterior covariance takes a
  rank-one update, so ``Var b_c`` drops by ``(g_c^T Sigma u)^2 I / (1 + I u^T Sigma u)``.

The score of a pair is ``sum_c w_c dVar_c / V*_c``, where ``V*_c`` is the variance at
which codec c meets the target and ``w_c = (Var_c / V*_c)^focus``: the greedy step of
the design problem "fewest votes such that every codec meets its target", with the
Lagrange multipliers of the codecs that limit the stopping rule approximated by how far
above target they are. ``objective="elo"`` scores by the information about the whole
score vector instead, ``ln(1 + I u^T Sigma u)`` (what H(E[p]) - E[H(p)] estimates in
elo_rater_model), for comparison.

Between refreshes the planner does not refit: the trials issued since the refresh
(answered or not) are passed to :meth:`ActivePlanner.choose` as ``pending`` counts per
condition pair, and their rank-one updates are applied exactly (a Woodbury update on the
conditions they touch) before scoring, so concurrent raters do not all get the same
pair; :meth:`ActivePlanner.absorb` folds them into the planner for good (a cheap update
without a fit). Each choice costs O(candidates x (codecs + touched conditions^2));
everything O(K^2) is done once per refresh.

Rater-level rules are those of the ``balanced`` strategy: the pair is on one image, the
image is the least used among those where the rater has a pair left, no rater sees a
pair twice on an image, and the condition a rater has seen more often on the left goes
right. An exploration floor keeps every condition sampled: a condition issued fewer than
``floor`` times gets the next trial (with its most informative partner), and with
probability ``exploration`` the least issued condition is paired at random.

Plain data in, plain data out, nothing from Django: the study app passes ids and
counts, as it does to ``studies.scheduling.choose_balanced_pair``.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.bdrate import bd_rate_draws
from analysis.model import ELO_SLOPE, ELO_VAR, LAPSE_VAR, TYPE_SHARE_VAR, rater_type_lapses

#: Target half-width of every codec's 95% BD-rate interval, percentage points.
DEFAULT_TARGET_HALFWIDTH: Final = 5.0
#: Probability of an exploration trial: the least issued condition with a random partner.
DEFAULT_EXPLORATION: Final = 0.1
#: A condition issued fewer times than this (study-wide) is paired before anything else.
DEFAULT_FLOOR: Final = 20
#: Exponent of the weight of a codec's normalised excess variance (Var / V*): 0 weighs
#: all codecs alike (A-optimal), large values chase the codec furthest from its target.
#: The greedy allocation with the true scores of the PICO-like simulation needed 5,600
#: votes at 0, 4,800 at 2, 4,550 at 4 and 4,500 at 8 (bench/active.py's design); 4 keeps
#: most of the gain without reacting to every wobble of the worst codec.
DEFAULT_FOCUS: Final = 4.0
#: Most candidate pairs scored per choice; more are sampled (the best ones of the
#: refresh's shortlist and a random share).
DEFAULT_MAX_CANDIDATES: Final = 384
#: Share of the candidates drawn at random from all pairs of the image when the image
#: has more pairs than ``max_candidates``.
DEFAULT_RANDOM_CANDIDATE_SHARE: Final = 0.25
#: Pairs kept, best first, from the refresh's scoring of every pair.
DEFAULT_SHORTLIST: Final = 2048
#: Most conditions touched by the pending trials applied exactly per choice; beyond
#: it, the most frequent pending pairs are kept (absorb the rest between refreshes).
DEFAULT_MAX_PENDING_CONDITIONS: Final = 96
#: Draws of the posterior used to linearise the BD-rates and measure their intervals
#: (as many as a fit's, so the half-widths are as precise as the study's own).
DEFAULT_LINEARISATION_DRAWS: Final = 4000
#: Bootstrap resamples of those draws for the standard error of each half-width.
HALFWIDTH_BOOTSTRAP: Final = 40
#: Probability mass of the reported intervals (as in analysis.fit).
INTERVAL_PROB: Final = 0.95
#: Fewest usable draws for a codec's BD-rate to be linearised; with fewer (curves not
#: increasing or not overlapping in most draws) the codec's mean score difference with
#: the anchor stands in for its BD-rate and the codec counts as UNKNOWN_EXCESS times
#: its target.
MIN_USABLE_DRAWS: Final = 100
UNKNOWN_EXCESS: Final = 4.0
#: The rater population of a model without lapses: everyone attentive.
ATTENTIVE: Final = ((1.0, 0.0),)

#: (image id, lower condition id, higher condition id), as studies.scheduling's PairKey.
PairKey = tuple[int, int, int]
#: Condition pair (lower id, higher id).
ConditionPair = tuple[int, int]

_FORMAT_VERSION: Final = 1


class Objective(StrEnum):
    """What a choice tries to learn."""

    BD_RATE = "bd-rate"
    """Shrink the BD-rate variances that limit the stopping rule (the default)."""
    ELO = "elo"
    """Information about all condition scores (elo_rater_model's criterion)."""


class ChoiceReason(StrEnum):
    """Why a pair was chosen."""

    INFORMATION = "information"
    FLOOR = "floor"
    EXPLORATION = "exploration"


@dataclass(frozen=True)
class PlannerSettings:
    """Choices of the active strategy; every one is documented at its default constant.

    Attributes
    ----------
    target_halfwidth : float
        Target half-width of every codec's 95% BD-rate interval, percentage points.
    objective : Objective
    focus : float
        Exponent of the weight of a codec's excess variance.
    exploration : float
        Probability of an exploration trial.
    floor : int
        Study-wide issues below which a condition is paired first.
    max_candidates, random_candidate_share, shortlist : int, float, int
        Candidate sampling.
    max_pending_conditions : int
        Conditions of pending trials applied exactly per choice.
    linearisation_draws : int
        Posterior draws for the BD-rate linearisation.
    """

    target_halfwidth: float = DEFAULT_TARGET_HALFWIDTH
    objective: Objective = Objective.BD_RATE
    focus: float = DEFAULT_FOCUS
    exploration: float = DEFAULT_EXPLORATION
    floor: int = DEFAULT_FLOOR
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    random_candidate_share: float = DEFAULT_RANDOM_CANDIDATE_SHARE
    shortlist: int = DEFAULT_SHORTLIST
    max_pending_conditions: int = DEFAULT_MAX_PENDING_CONDITIONS
    linearisation_draws: int = DEFAULT_LINEARISATION_DRAWS

    def __post_init__(self) -> None:
        object.__setattr__(self, "objective", Objective(self.objective))
        if not (math.isfinite(self.target_halfwidth) and self.target_halfwidth > 0):
            raise ValueError(f"target_halfwidth must be positive, got {self.target_halfwidth}")
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError(f"exploration must be in [0, 1], got {self.exploration}")
        if not 0.0 <= self.random_candidate_share <= 1.0:
            raise ValueError("random_candidate_share must be in [0, 1]")
        if self.focus < 0 or self.floor < 0:
            raise ValueError("focus and floor must not be negative")
        if min(self.max_candidates, self.shortlist, self.linearisation_draws) < 1:
            raise ValueError("max_candidates, shortlist and linearisation_draws must be positive")
        if self.max_pending_conditions < 2:
            raise ValueError("max_pending_conditions must be at least 2")


@dataclass(frozen=True)
class ActiveChoice:
    """The pair a rater sees next (the same fields as studies.scheduling.PairChoice).

    Attributes
    ----------
    image_id, left_condition_id, right_condition_id : int
    reason : ChoiceReason
    score : float
        The pair's score (0 for exploration).
    """

    image_id: int
    left_condition_id: int
    right_condition_id: int
    reason: ChoiceReason = ChoiceReason.INFORMATION
    score: float = 0.0


@dataclass(frozen=True)
class ActivePlanner:
    """What one posterior refresh precomputes for active pair selection.

    Build with :meth:`from_laplace` or :meth:`from_posterior` (in a background task),
    store with :meth:`to_bytes`, load in web processes with :meth:`from_bytes`, then call
    :meth:`choose` per trial. Indices below are positions in ``condition_ids``.

    Attributes
    ----------
    condition_ids : ndarray of int, shape (K,)
    codecs : tuple of str
        Non-anchor codecs, in order of appearance.
    anchor : str
    mean : ndarray, shape (K,)
        Posterior mean Elo.
    covariance : ndarray, shape (K, K)
        Posterior covariance of the Elo scores (after absorbed trials).
    gradient : ndarray, shape (C, K)
        Linearised BD-rate of each codec, percent per Elo point.
    projected : ndarray, shape (K, C)
        ``covariance @ gradient.T``.
    variance : ndarray, shape (C,)
        Linearised BD-rate variances, ``g_c^T Sigma g_c``.
    target_variance : ndarray, shape (C,)
        Variance at which each codec's half-width meets the target.
    bd_rate, halfwidth : ndarray, shape (C,)
        Median BD-rate and 95% half-width at the refresh, percent (NaN when no usable
        draw); later half-widths are predicted as ``halfwidth * sqrt(variance / v0)``.
    halfwidth_se : ndarray, shape (C,)
        Monte Carlo standard error of ``halfwidth`` (bootstrap over the draws).
    initial_variance : ndarray, shape (C,)
        ``variance`` at the refresh.
    rater_mix : ndarray, shape (T, 2)
        Share and random-answer probability of each rater type.
    shortlist_a, shortlist_b : ndarray of int
        Pairs (indices, a < b) best first by their score at the refresh.
    settings : PlannerSettings
    n_votes : int
        Votes in the fit (for the forecast's step size).
    """

    condition_ids: npt.NDArray[np.int64]
    codecs: tuple[str, ...]
    anchor: str
    mean: npt.NDArray[np.float64]
    covariance: npt.NDArray[np.float64]
    gradient: npt.NDArray[np.float64]
    projected: npt.NDArray[np.float64]
    variance: npt.NDArray[np.float64]
    target_variance: npt.NDArray[np.float64]
    bd_rate: npt.NDArray[np.float64]
    halfwidth: npt.NDArray[np.float64]
    halfwidth_se: npt.NDArray[np.float64]
    initial_variance: npt.NDArray[np.float64]
    rater_mix: npt.NDArray[np.float64]
    shortlist_a: npt.NDArray[np.int64]
    shortlist_b: npt.NDArray[np.int64]
    settings: PlannerSettings = field(default_factory=PlannerSettings)
    n_votes: int = 0

    # --- building --------------------------------------------------------------------

    @classmethod
    def from_laplace(
        cls,
        fit: object,
        points: pd.DataFrame,
        *,
        anchor: str,
        condition_ids: Sequence[int] | None = None,
        settings: PlannerSettings | None = None,
        n_votes: int = 0,
        random_seed: int = 0,
    ) -> ActivePlanner:
        """Build the planner from a fast fit of the study's votes.

        Parameters
        ----------
        fit : analysis.laplace.LaplaceFit
            From :func:`analysis.laplace.fit_laplace` (``bt``, ``bt-rater`` or
            ``bt-image``; ``bt`` is the cheapest and BD-rates barely depend on the
            model). Its ``map_point["elo"]`` and ``elo_covariance`` are used, and for
            ``bt-rater`` the lapse and rater-type shares at the mode.
        points : DataFrame
            ``condition, codec, bpp`` of the fit's conditions in their order
            (:func:`analysis.fit.condition_points` with ``data.conditions``).
        anchor : str
        condition_ids : sequence of int, optional
            The study's ids of the conditions, in the same order; 0..K-1 by default.
        settings : PlannerSettings, optional
        n_votes : int
            Counted votes in the fit.
        random_seed : int
            Seed of the linearisation draws.

        Returns
        -------
        ActivePlanner

        Raises
        ------
        ValueError
            If the fit has no Elo covariance, or as :meth:`from_posterior`.
        """
        map_point: Mapping[str, npt.NDArray[np.float64]] = getattr(fit, "map_point", {})
        covariance = getattr(fit, "elo_covariance", None)
        if covariance is None or ELO_VAR not in map_point:
            raise ValueError("the fit has no Elo scores with a covariance (a LaplaceFit is needed)")
        mix: Sequence[tuple[float, float]] = ATTENTIVE
        if LAPSE_VAR in map_point and TYPE_SHARE_VAR in map_point:
            shares = np.asarray(map_point[TYPE_SHARE_VAR], dtype=np.float64)
            lapses = rater_type_lapses(float(map_point[LAPSE_VAR]))
            mix = [(float(s), float(q)) for s, q in zip(shares, lapses, strict=True)]
        return cls.from_posterior(
            map_point[ELO_VAR],
            covariance,
            points,
            anchor=anchor,
            condition_ids=condition_ids,
            rater_mix=mix,
            settings=settings,
            n_votes=n_votes,
            random_seed=random_seed,
        )

    @classmethod
    def from_posterior(
        cls,
        mean: npt.ArrayLike,
        covariance: npt.ArrayLike,
        points: pd.DataFrame,
        *,
        anchor: str,
        condition_ids: Sequence[int] | None = None,
        rater_mix: Sequence[tuple[float, float]] = ATTENTIVE,
        settings: PlannerSettings | None = None,
        n_votes: int = 0,
        random_seed: int = 0,
    ) -> ActivePlanner:
        """Precompute a refresh from a Gaussian posterior of the condition scores.

        Parameters
        ----------
        mean : array_like, shape (K,)
            Posterior mean (or mode) Elo of each condition.
        covariance : array_like, shape (K, K)
            Posterior covariance of the scores.
        points : DataFrame
            ``condition, codec, bpp`` per condition, in the same order.
        anchor : str
            The codec BD-rates are measured against.
        condition_ids : sequence of int, optional
            Ids of the conditions; 0..K-1 by default.
        rater_mix : sequence of (share, lapse)
            The rater population: share of each type and its probability of answering
            at random; everyone attentive by default (right for ``bt``, whose scores
            already absorb the lapses).
        settings : PlannerSettings, optional
        n_votes : int
            Counted votes behind the posterior.
        random_seed : int
            Seed of the linearisation draws.

        Returns
        -------
        ActivePlanner

        Raises
        ------
        ValueError
            If the shapes disagree, the anchor has no condition, there is no other
            codec, ids repeat, or the rater mix is invalid.
        """
        settings = PlannerSettings() if settings is None else settings
        m = np.asarray(mean, dtype=np.float64).ravel()
        sigma = np.asarray(covariance, dtype=np.float64)
        k = m.size
        if sigma.shape != (k, k) or len(points) != k:
            raise ValueError(f"mean, covariance and points must describe the same {k} conditions")
        if k < 2:
            raise ValueError("need at least two conditions")
        ids = np.arange(k, dtype=np.int64) if condition_ids is None else np.asarray(condition_ids)
        if ids.shape != (k,) or np.unique(ids).size != k:
            raise ValueError("condition_ids must be K distinct integers")
        mix = np.asarray(rater_mix, dtype=np.float64).reshape(-1, 2)
        if np.any(mix < 0) or np.any(mix[:, 1] > 1) or mix[:, 0].sum() <= 0:
            raise ValueError("rater_mix needs non-negative shares and lapses in [0, 1]")
        mix[:, 0] /= mix[:, 0].sum()
        sigma = (sigma + sigma.T) / 2.0
        codec_of = points["codec"].to_numpy().astype(str)
        bpp = points["bpp"].to_numpy(dtype=np.float64)
        if anchor not in set(codec_of):
            raise ValueError(f"anchor codec {anchor!r} has no condition")
        codecs = tuple(c for c in pd.unique(codec_of) if c != anchor)
        if not codecs:
            raise ValueError("need a codec besides the anchor")
        rng = np.random.default_rng(random_seed)
        gradient, bd_rate, halfwidth, halfwidth_se = _linearise(
            m, sigma, codec_of, bpp, anchor, codecs, settings.linearisation_draws, rng
        )
        projected = sigma @ gradient.T
        variance = np.einsum("kc,ck->c", projected, gradient)
        variance = np.maximum(variance, np.finfo(np.float64).tiny)
        excess = np.where(
            np.isfinite(halfwidth), halfwidth / settings.target_halfwidth, UNKNOWN_EXCESS
        )
        target_variance = variance / np.maximum(excess, np.finfo(np.float64).eps) ** 2
        planner = cls(
            condition_ids=ids.astype(np.int64),
            codecs=codecs,
            anchor=anchor,
            mean=m,
            covariance=sigma,
            gradient=gradient,
            projected=projected,
            variance=variance,
            target_variance=target_variance,
            bd_rate=bd_rate,
            halfwidth=halfwidth,
            halfwidth_se=halfwidth_se,
            initial_variance=variance.copy(),
            rater_mix=mix,
            shortlist_a=np.zeros(0, dtype=np.int64),
            shortlist_b=np.zeros(0, dtype=np.int64),
            settings=settings,
            n_votes=int(n_votes),
        )
        first, second = planner._shortlist()
        return _replace(planner, shortlist_a=first, shortlist_b=second)

    # --- what the study shows --------------------------------------------------------

    def predicted_halfwidth(
        self, variance: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """Half-widths predicted for the given (default: current) BD-rate variances.

        Parameters
        ----------
        variance : ndarray, shape (C,), optional

        Returns
        -------
        ndarray, shape (C,)
            Percentage points; NaN for codecs without a measured half-width.
        """
        v = self.variance if variance is None else variance
        return self.halfwidth * np.sqrt(np.maximum(v, 0.0) / self.initial_variance)

    def answer_information(self, a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Fisher information about E_a - E_b of one answer, at the posterior mean.

        Parameters
        ----------
        a, b : array_like of int
            Condition indices.

        Returns
        -------
        ndarray
            Per pair, in 1 / Elo^2.
        """
        diff = self.mean[np.asarray(a)] - self.mean[np.asarray(b)]
        return pair_information(diff, self.rater_mix)

    # --- choosing --------------------------------------------------------------------

    def choose(
        self,
        *,
        image_ids: Iterable[int],
        issued_per_image: Mapping[int, int],
        seen_by_rater: Collection[PairKey],
        rng: random.Random,
        side_balance: Mapping[int, int] | None = None,
        pending: Mapping[ConditionPair, int] | None = None,
        appearances: Mapping[int, int] | None = None,
    ) -> ActiveChoice | None:
        """Choose the next pair for one rater, or None when the rater has seen every pair.

        Parameters
        ----------
        image_ids : iterable of int
            The study's images; every condition has a stimulus on each.
        issued_per_image : mapping of int to int
            Trials issued so far per image (all raters; missing: none).
        seen_by_rater : collection of (image id, condition id, condition id)
            Pairs already issued to this rater (either order of the conditions).
        rng : random.Random
            Tie-breaks, exploration and candidate sampling.
        side_balance : mapping of int to int, optional
            Per condition, how many more times this rater saw it on the left than on
            the right.
        pending : mapping of (condition id, condition id) to int, optional
            Trials issued since this planner's refresh (answered or not, all raters)
            and not absorbed, per condition pair.
        appearances : mapping of int to int, optional
            Per condition, trials issued study-wide; enables the floor and makes
            exploration pick the least issued condition.

        Returns
        -------
        ActiveChoice or None

        Raises
        ------
        KeyError
            If a pending pair or a seen pair names an unknown condition id.
        """
        k = self.condition_ids.size
        n_pairs = k * (k - 1) // 2
        index = {int(c): i for i, c in enumerate(self.condition_ids)}
        seen_on: dict[int, set[tuple[int, int]]] = {}
        for image_id, first, second in seen_by_rater:
            i, j = index[int(first)], index[int(second)]
            seen_on.setdefault(int(image_id), set()).add((min(i, j), max(i, j)))
        open_images = [
            image_id
            for image_id in sorted(set(image_ids))
            if len(seen_on.get(image_id, ())) < n_pairs
        ]
        if not open_images:
            return None
        fewest = min(issued_per_image.get(i, 0) for i in open_images)
        image_id = rng.choice([i for i in open_images if issued_per_image.get(i, 0) == fewest])
        seen = seen_on.get(image_id, set())
        state = self._pending_state(pending or {}, index)

        forced: int | None = None
        reason = ChoiceReason.INFORMATION
        counts = None
        if appearances is not None:
            counts = np.array([appearances.get(int(c), 0) for c in self.condition_ids])
        if counts is not None and counts.min() < self.settings.floor:
            forced, reason = self._least(counts, seen, rng), ChoiceReason.FLOOR
        elif rng.random() < self.settings.exploration:
            reason = ChoiceReason.EXPLORATION
            if counts is not None:
                forced = self._least(counts, seen, rng)
            pair = _random_pair(k, seen, rng, forced)
            if pair is not None:
                return self._oriented(image_id, *pair, reason, 0.0, side_balance, rng)
            reason = ChoiceReason.INFORMATION
            forced = None
        a, b = self._candidates(seen, rng, forced)
        if a.size == 0:
            a, b = self._candidates(seen, rng, None)
            reason = ChoiceReason.INFORMATION
        score = self._score(a, b, state)
        best = np.flatnonzero(score >= score.max() - 1e-12 * abs(score.max()))
        pick = int(best[rng.randrange(best.size)])
        return self._oriented(
            image_id, int(a[pick]), int(b[pick]), reason, float(score[pick]), side_balance, rng
        )

    def current_variance(
        self, pending: Mapping[ConditionPair, int] | None = None
    ) -> npt.NDArray[np.float64]:
        """Linearised BD-rate variances after the pending trials.

        Parameters
        ----------
        pending : mapping of (condition id, condition id) to int, optional

        Returns
        -------
        ndarray, shape (C,)
        """
        index = {int(c): i for i, c in enumerate(self.condition_ids)}
        return self._pending_state(pending or {}, index).variance

    def absorb(self, pending: Mapping[ConditionPair, int]) -> ActivePlanner:
        """Fold trials into the planner without a refit (a cheap update).

        Every pending pair is applied exactly (by rounds of at most
        ``max_pending_conditions`` conditions); the mean, the linearisation and the
        shortlist stay those of the refresh.

        Parameters
        ----------
        pending : mapping of (condition id, condition id) to int

        Returns
        -------
        ActivePlanner
            A new planner; this one is unchanged.

        Raises
        ------
        KeyError
            If a pair names an unknown condition id.
        """
        index = {int(c): i for i, c in enumerate(self.condition_ids)}
        planner = self
        remaining = dict(pending)
        while remaining:
            state = planner._pending_state(remaining, index)
            used = state.used
            sigma_s = planner.covariance[:, state.conditions]
            covariance = planner.covariance - sigma_s @ state.h @ sigma_s.T
            covariance = (covariance + covariance.T) / 2.0
            projected = planner.projected - sigma_s @ state.h @ planner.projected[state.conditions]
            planner = _replace(
                planner, covariance=covariance, projected=projected, variance=state.variance
            )
            remaining = {pair: n for pair, n in remaining.items() if pair not in used}
        return planner

    # --- serialisation ---------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The planner as a compressed ``.npz`` (no pickles), for a file or a database.

        Returns
        -------
        bytes
        """
        buffer = io.BytesIO()
        arrays = {
            name: getattr(self, name)
            for name in (
                "condition_ids",
                "mean",
                "covariance",
                "gradient",
                "projected",
                "variance",
                "target_variance",
                "bd_rate",
                "halfwidth",
                "halfwidth_se",
                "initial_variance",
                "rater_mix",
                "shortlist_a",
                "shortlist_b",
            )
        }
        meta = {
            "version": _FORMAT_VERSION,
            "anchor": self.anchor,
            "n_votes": self.n_votes,
            **{f"setting_{k}": str(v) for k, v in asdict(self.settings).items()},
        }
        np.savez_compressed(
            buffer,
            codecs=np.asarray(self.codecs, dtype=str),
            meta_keys=np.asarray(list(meta), dtype=str),
            meta_values=np.asarray([str(v) for v in meta.values()], dtype=str),
            **arrays,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> ActivePlanner:
        """Load a planner written by :meth:`to_bytes`.

        Parameters
        ----------
        blob : bytes

        Returns
        -------
        ActivePlanner

        Raises
        ------
        ValueError
            If the data are not a planner of this version.
        """
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            meta = dict(zip(data["meta_keys"].tolist(), data["meta_values"].tolist(), strict=True))
            if meta.get("version") != str(_FORMAT_VERSION):
                raise ValueError(f"not an active planner of format {_FORMAT_VERSION}")
            defaults = asdict(PlannerSettings())
            settings = PlannerSettings(
                **{
                    key: type(default)(meta[f"setting_{key}"])
                    if not isinstance(default, StrEnum)
                    else meta[f"setting_{key}"]
                    for key, default in defaults.items()
                }
            )
            return cls(
                condition_ids=data["condition_ids"].astype(np.int64),
                codecs=tuple(data["codecs"].tolist()),
                anchor=meta["anchor"],
                mean=data["mean"],
                covariance=data["covariance"],
                gradient=data["gradient"],
                projected=data["projected"],
                variance=data["variance"],
                target_variance=data["target_variance"],
                bd_rate=data["bd_rate"],
                halfwidth=data["halfwidth"],
                halfwidth_se=data["halfwidth_se"],
                initial_variance=data["initial_variance"],
                rater_mix=data["rater_mix"],
                shortlist_a=data["shortlist_a"].astype(np.int64),
                shortlist_b=data["shortlist_b"].astype(np.int64),
                settings=settings,
                n_votes=int(meta["n_votes"]),
            )

    # --- internals -------------------------------------------------------------------

    def codec_weights(self, variance: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Weight of each codec's variance reduction in a pair's score.

        Parameters
        ----------
        variance : ndarray, shape (C,)
            Current linearised variances.

        Returns
        -------
        ndarray, shape (C,)
            ``(variance / V*)^focus / V*``.
        """
        excess = variance / self.target_variance
        return excess**self.settings.focus / self.target_variance

    def pair_scores(
        self,
        a: npt.NDArray[np.int64],
        b: npt.NDArray[np.int64],
        pending: Mapping[ConditionPair, int] | None = None,
    ) -> npt.NDArray[np.float64]:
        """Scores of pairs (condition indices) after the pending trials.

        Parameters
        ----------
        a, b : ndarray of int
            Condition indices of each pair.
        pending : mapping of (condition id, condition id) to int, optional

        Returns
        -------
        ndarray
        """
        index = {int(c): i for i, c in enumerate(self.condition_ids)}
        return self._score(a, b, self._pending_state(pending or {}, index))

    def _score(
        self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], state: _PendingState
    ) -> npt.NDArray[np.float64]:
        info = self.answer_information(a, b)
        sigma = self.covariance
        s = sigma[a, a] + sigma[b, b] - 2.0 * sigma[a, b]
        if state.conditions.size:
            z = sigma[np.ix_(state.conditions, a)] - sigma[np.ix_(state.conditions, b)]
            hz = state.h @ z
            s = s - np.einsum("mn,mn->n", z, hz)
        s = np.maximum(s, 0.0)
        if self.settings.objective is Objective.ELO:
            return np.log1p(info * s)
        projected = self.projected[a] - self.projected[b]
        if state.conditions.size:
            projected = projected - hz.T @ self.projected[state.conditions]
        gain = projected**2 * (info / (1.0 + info * s))[:, None]
        return gain @ self.codec_weights(state.variance)

    def _pending_state(
        self, pending: Mapping[ConditionPair, int], index: Mapping[int, int]
    ) -> _PendingState:
        """The Woodbury factor of the pending trials on the conditions they touch."""
        pairs = sorted(pending.items(), key=lambda item: -item[1])
        chosen: list[tuple[int, int, int]] = []
        used: set[ConditionPair] = set()
        touched: dict[int, int] = {}
        limit = self.settings.max_pending_conditions
        for pair, count in pairs:
            if count <= 0:
                used.add(pair)
                continue
            i, j = index[int(pair[0])], index[int(pair[1])]
            new = [c for c in (i, j) if c not in touched]
            if len(touched) + len(new) > limit:
                continue
            for c in new:
                touched[c] = len(touched)
            chosen.append((i, j, count))
            used.add(pair)
        if not chosen:
            return _PendingState(
                conditions=np.zeros(0, dtype=np.int64),
                h=np.zeros((0, 0)),
                variance=self.variance,
                used=used,
            )
        conditions = np.fromiter(touched, dtype=np.int64, count=len(touched))
        first = np.array([touched[i] for i, _, _ in chosen])
        second = np.array([touched[j] for _, j, _ in chosen])
        weight = np.array([n for _, _, n in chosen], dtype=np.float64) * self.answer_information(
            conditions[first], conditions[second]
        )
        size = conditions.size
        laplacian = np.zeros((size, size))
        np.add.at(laplacian, (first, first), weight)
        np.add.at(laplacian, (second, second), weight)
        np.add.at(laplacian, (first, second), -weight)
        np.add.at(laplacian, (second, first), -weight)
        sigma_ss = self.covariance[np.ix_(conditions, conditions)]
        # Sigma' = Sigma - Sigma[:, S] H Sigma[S, :],
        # H = L (I + Sigma_SS L)^-1 = (I + L Sigma_SS)^-1 L.
        h = np.linalg.solve(np.eye(size) + laplacian @ sigma_ss, laplacian)
        h = (h + h.T) / 2.0
        projected = self.projected[conditions]
        variance = self.variance - np.einsum("mc,mn,nc->c", projected, h, projected)
        return _PendingState(
            conditions=conditions,
            h=h,
            variance=np.maximum(variance, np.finfo(np.float64).tiny),
            used=used,
        )

    def _shortlist(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """All pairs scored at the refresh; the best ``shortlist`` of them, best first."""
        k = self.condition_ids.size
        state = _PendingState(
            conditions=np.zeros(0, dtype=np.int64), h=np.zeros((0, 0)), variance=self.variance
        )
        keep = self.settings.shortlist
        best_a: list[npt.NDArray[np.int64]] = []
        best_b: list[npt.NDArray[np.int64]] = []
        best_s: list[npt.NDArray[np.float64]] = []
        # Rows of the upper triangle in chunks of about 200,000 pairs.
        rows_per_chunk = max(1, 200_000 // k)
        for start in range(0, k - 1, rows_per_chunk):
            a_rows = np.arange(start, min(k - 1, start + rows_per_chunk))
            a_list = [np.full(k - 1 - i, i, dtype=np.int64) for i in a_rows]
            b_list = [np.arange(i + 1, k, dtype=np.int64) for i in a_rows]
            a, b = np.concatenate(a_list), np.concatenate(b_list)
            score = self._score(a, b, state)
            if score.size > keep:
                top = np.argpartition(-score, keep - 1)[:keep]
                a, b, score = a[top], b[top], score[top]
            best_a.append(a)
            best_b.append(b)
            best_s.append(score)
        a, b, score = np.concatenate(best_a), np.concatenate(best_b), np.concatenate(best_s)
        order = np.argsort(-score, kind="stable")[:keep]
        return a[order], b[order]

    def _candidates(
        self, seen: set[tuple[int, int]], rng: random.Random, forced: int | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Candidate pairs (index a < b) the rater has not seen on the image."""
        k = self.condition_ids.size
        limit = self.settings.max_candidates
        if forced is not None:
            others = [c for c in range(k) if c != forced]
            if len(others) > limit:
                others = rng.sample(others, limit)
            pairs = [(min(forced, c), max(forced, c)) for c in others]
            pairs = [p for p in pairs if p not in seen]
            return _arrays(pairs)
        if k * (k - 1) // 2 <= limit:
            pairs = [(i, j) for i in range(k) for j in range(i + 1, k) if (i, j) not in seen]
            return _arrays(pairs)
        n_random = round(limit * self.settings.random_candidate_share)
        chosen: set[tuple[int, int]] = set()
        for i, j in zip(self.shortlist_a.tolist(), self.shortlist_b.tolist(), strict=True):
            if len(chosen) >= limit - n_random:
                break
            if (i, j) not in seen:
                chosen.add((i, j))
        attempts = 0
        while len(chosen) < limit and attempts < 4 * limit:
            attempts += 1
            i, j = rng.randrange(k), rng.randrange(k)
            pair = (min(i, j), max(i, j))
            if i != j and pair not in seen:
                chosen.add(pair)
        return _arrays(sorted(chosen))

    def _least(
        self, counts: npt.NDArray[np.int64], seen: set[tuple[int, int]], rng: random.Random
    ) -> int:
        """A least-issued condition that still has an unseen pair on the image."""
        k = counts.size
        seen_count = np.zeros(k, dtype=np.int64)
        for i, j in seen:
            seen_count[i] += 1
            seen_count[j] += 1
        available = np.flatnonzero(seen_count < k - 1)
        fewest = counts[available].min()
        return int(rng.choice(available[counts[available] == fewest].tolist()))

    def _oriented(
        self,
        image_id: int,
        a: int,
        b: int,
        reason: ChoiceReason,
        score: float,
        side_balance: Mapping[int, int] | None,
        rng: random.Random,
    ) -> ActiveChoice:
        first, second = int(self.condition_ids[a]), int(self.condition_ids[b])
        left, right = orient_pair(first, second, side_balance=side_balance or {}, rng=rng)
        return ActiveChoice(
            image_id=image_id,
            left_condition_id=left,
            right_condition_id=right,
            reason=reason,
            score=score,
        )


@dataclass(frozen=True)
class _PendingState:
    conditions: npt.NDArray[np.int64]
    h: npt.NDArray[np.float64]
    variance: npt.NDArray[np.float64]
    used: set[ConditionPair] = field(default_factory=set)


def pair_information(
    elo_difference: npt.ArrayLike, rater_mix: npt.ArrayLike = ATTENTIVE
) -> npt.NDArray[np.float64]:
    """Fisher information of one answer about an Elo difference, averaged over raters.

    Parameters
    ----------
    elo_difference : array_like
        E_a - E_b.
    rater_mix : array_like, shape (T, 2)
        Share and random-answer probability of each rater type.

    Returns
    -------
    ndarray
        ``s^2 sum_t share_t (1 - q_t)^2 (p (1 - p))^2 / (P_t (1 - P_t))`` in 1 / Elo^2,
        with ``p`` the Bradley-Terry probability and ``P_t = q_t / 2 + (1 - q_t) p``.
    """
    diff = np.asarray(elo_difference, dtype=np.float64)
    mix = np.asarray(rater_mix, dtype=np.float64).reshape(-1, 2)
    p = 1.0 / (1.0 + np.exp(-ELO_SLOPE * diff))
    pq = p * (1.0 - p)
    total = np.zeros_like(diff)
    for share, lapse in mix:
        answer = lapse / 2.0 + (1.0 - lapse) * p
        with np.errstate(divide="ignore", invalid="ignore"):
            term = (1.0 - lapse) ** 2 * pq**2 / (answer * (1.0 - answer))
        total = total + share * np.nan_to_num(term)
    return ELO_SLOPE**2 * total


def orient_pair(
    a: int, b: int, *, side_balance: Mapping[int, int], rng: random.Random
) -> tuple[int, int]:
    """(left, right): the condition less often on the left so far goes left.

    The rule of ``studies.scheduling.orient_pair``.

    Parameters
    ----------
    a, b : int
        Condition ids.
    side_balance : mapping of int to int
        Per condition, left minus right appearances for this rater.
    rng : random.Random

    Returns
    -------
    tuple of int
    """
    balance_a, balance_b = side_balance.get(a, 0), side_balance.get(b, 0)
    if balance_a == balance_b:
        return (a, b) if rng.random() < 0.5 else (b, a)
    return (a, b) if balance_a < balance_b else (b, a)


def _random_pair(
    k: int, seen: set[tuple[int, int]], rng: random.Random, forced: int | None
) -> tuple[int, int] | None:
    """A uniformly random unseen pair (containing ``forced`` when given)."""
    if forced is not None:
        partners = [
            c for c in range(k) if c != forced and (min(c, forced), max(c, forced)) not in seen
        ]
        if not partners:
            return None
        other = rng.choice(partners)
        return (min(forced, other), max(forced, other))
    for _ in range(64):
        i, j = rng.randrange(k), rng.randrange(k)
        if i != j and (min(i, j), max(i, j)) not in seen:
            return (min(i, j), max(i, j))
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k) if (i, j) not in seen]
    return rng.choice(pairs) if pairs else None


def _arrays(
    pairs: Sequence[tuple[int, int]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    array = np.asarray(pairs, dtype=np.int64)
    return array[:, 0], array[:, 1]


def _replace(planner: ActivePlanner, **changes: object) -> ActivePlanner:
    return replace(planner, **changes)  # type: ignore[arg-type]


def _linearise(
    mean: npt.NDArray[np.float64],
    covariance: npt.NDArray[np.float64],
    codec_of: npt.NDArray[np.str_],
    bpp: npt.NDArray[np.float64],
    anchor: str,
    codecs: Sequence[str],
    n_draws: int,
    rng: np.random.Generator,
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]:
    """Per codec: BD-rate gradient (least squares over posterior draws), median,
    half-width and its bootstrap standard error."""
    k = mean.size
    gradient = np.zeros((len(codecs), k))
    median = np.full(len(codecs), np.nan)
    halfwidth = np.full(len(codecs), np.nan)
    halfwidth_se = np.full(len(codecs), np.nan)
    anchor_idx = np.flatnonzero(codec_of == anchor)
    lo_q, hi_q = (1.0 - INTERVAL_PROB) / 2.0, (1.0 + INTERVAL_PROB) / 2.0
    for c, codec in enumerate(codecs):
        codec_idx = np.flatnonzero(codec_of == codec)
        idx = np.concatenate([anchor_idx, codec_idx])
        sub = covariance[np.ix_(idx, idx)]
        draws = mean[idx] + _gaussian(sub, n_draws, rng)
        percent = bd_rate_draws(
            bpp[anchor_idx],
            draws[:, : anchor_idx.size],
            bpp[codec_idx],
            draws[:, anchor_idx.size :],
        ).percent
        usable = np.isfinite(percent)
        if usable.sum() >= MIN_USABLE_DRAWS:
            x = draws[usable] - draws[usable].mean(axis=0)
            y = percent[usable] - percent[usable].mean()
            gradient[c, idx] = np.linalg.lstsq(x, y, rcond=None)[0]
            median[c] = float(np.median(percent[usable]))
            lo, hi = np.quantile(percent[usable], [lo_q, hi_q])
            halfwidth[c] = float(hi - lo) / 2.0
            resampled = rng.choice(percent[usable], (HALFWIDTH_BOOTSTRAP, int(usable.sum())))
            bounds = np.quantile(resampled, [lo_q, hi_q], axis=1)
            halfwidth_se[c] = float(np.std((bounds[1] - bounds[0]) / 2.0, ddof=1))
        else:
            # The mean score gap to the anchor stands in until the curves are usable.
            gradient[c, codec_idx] = 1.0 / codec_idx.size
            gradient[c, anchor_idx] = -1.0 / anchor_idx.size
    return gradient, median, halfwidth, halfwidth_se


def _gaussian(
    covariance: npt.NDArray[np.float64], n: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Centred Gaussian draws with a possibly singular covariance."""
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2.0)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return rng.standard_normal((n, values.size)) @ root.T
